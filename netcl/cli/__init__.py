"""The `netcl` console command."""
