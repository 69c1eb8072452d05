"""torch's dtype names for NumPy's dtypes: minigrad.float is float32, minigrad.long is int64.

(They shadow Python's float, int and bool only inside the minigrad namespace, as in torch;
NumPy's names float32, int64, bool_ are in minigrad too.) NumPy has no bfloat16.
"""
import numpy

half = float16 = numpy.float16
float = float32 = numpy.float32  # noqa: A001
double = float64 = numpy.float64
long = int64 = numpy.int64
int = int32 = numpy.int32  # noqa: A001
short = int16 = numpy.int16
int8, uint8 = numpy.int8, numpy.uint8
bool = numpy.bool_  # noqa: A001

__all__ = ["half", "float16", "float", "float32", "double", "float64", "long", "int64", "int",
           "int32", "short", "int16", "int8", "uint8", "bool"]
