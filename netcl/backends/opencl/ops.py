"""C expressions of netcl's elementwise ops.

Each function takes the compute type ``t`` (a C type name) and returns
``(expression, result_type)`` over the operands ``x0`` (and ``x1``). Float
results follow numpy: NaN propagates through maximum/minimum/relu, and
comparisons and logical ops give bool (``uchar`` 0/1).
"""

from __future__ import annotations

__all__ = ["FLOAT_ONLY_UNARY", "binary_expr", "unary_expr"]

_FLOATS = ("float", "double")

# Unary ops that need a floating compute type.
FLOAT_ONLY_UNARY = frozenset(
    "exp log sqrt tanh sin cos recip sigmoid gelu log1p erf".split()
)

_MATH = {"exp", "log", "sqrt", "tanh", "sin", "cos", "log1p", "erf"}


def unary_expr(op: str, t: str):
    """``(expr, result_type)`` of unary ``op`` on ``x0``, or None if unknown."""
    is_float = t in _FLOATS
    if op in _MATH:
        return f"{op}(x0)", t
    if op == "neg":
        return "-x0", t
    if op == "abs":
        return ("fabs(x0)" if is_float else "(x0 < 0 ? -x0 : x0)"), t
    if op == "sign":
        if is_float:
            return f"(x0 > 0 ? ({t})1 : (x0 < 0 ? ({t})-1 : x0))", t
        return "((x0 > 0) - (x0 < 0))", t
    if op == "recip":
        return f"(({t})1 / x0)", t
    if op == "not":
        return "(uchar)(x0 == 0)", "uchar"
    if op == "relu":
        if is_float:
            return f"((x0 > 0 || x0 != x0) ? x0 : ({t})0)", t
        return "(x0 > 0 ? x0 : 0)", t
    if op == "sigmoid":
        return (
            f"(x0 >= 0 ? ({t})1 / (({t})1 + exp(-x0)) : exp(x0) / (({t})1 + exp(x0)))"
        ), t
    if op == "gelu":
        return f"(({t})0.5 * x0 * (({t})1 + erf(x0 * ({t})M_SQRT1_2)))", t
    return None


_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_ARITH = {"add": "+", "sub": "-", "mul": "*"}


def binary_expr(op: str, t: str, is_bool: bool = False):
    """``(expr, result_type)`` of binary ``op`` on ``x0``, ``x1``, or None."""
    is_float = t in _FLOATS
    if op in _COMPARE:
        return f"(uchar)(x0 {_COMPARE[op]} x1)", "uchar"
    if op == "and":
        return "(uchar)((x0 != 0) && (x1 != 0))", "uchar"
    if op == "or":
        return "(uchar)((x0 != 0) || (x1 != 0))", "uchar"
    if is_bool and op in ("add", "mul"):
        return ("(x0 | x1)" if op == "add" else "(x0 & x1)"), t
    if op in _ARITH:
        return f"(x0 {_ARITH[op]} x1)", t
    if op == "div":
        return ("(x0 / x1)" if is_float else "(x1 == 0 ? 0 : x0 / x1)"), t
    if op == "pow":
        return ("pow(x0, x1)" if is_float else "netcl_ipow(x0, x1)"), t
    if op in ("maximum", "minimum"):
        cmp = ">" if op == "maximum" else "<"
        nan = " || x0 != x0" if is_float else ""
        return f"((x0 {cmp} x1{nan}) ? x0 : x1)", t
    return _gradient_expr(op, t)


def _gradient_expr(op: str, t: str):
    """Fused backward ops: ``x0`` is the incoming gradient."""
    if op == "relu_grad":
        return f"(x1 > 0 ? x0 : ({t})0)", t
    if op == "tanh_grad":
        return f"(x0 * (({t})1 - x1 * x1))", t
    if op == "sigmoid_grad":
        return f"(x0 * x1 * (({t})1 - x1))", t
    if op == "gelu_grad":
        cdf = f"({t})0.5 * (({t})1 + erf(x1 * ({t})M_SQRT1_2))"
        pdf = f"exp(({t})-0.5 * x1 * x1) * ({t})0.3989422804014327"
        return f"(x0 * (({cdf}) + x1 * ({pdf})))", t
    return None
