#include "expr/num.hpp"

namespace chanflow::expr {

const char* bin_symbol(BinOp op) {
    switch (op) {
        case BinOp::Add:
            return "+";
        case BinOp::Sub:
            return "-";
        case BinOp::Mul:
            return "*";
        case BinOp::Div:
            return "/";
        case BinOp::FloorDiv:
            return "//";
        case BinOp::Mod:
            return "%";
        case BinOp::Pow:
            return "**";
    }
    return "?";
}

/// Throws the message for a failed numeric operation; `what` shows the operation.
[[noreturn]] void num_fail(NumError e, const std::string& what) {
    switch (e) {
        case NumError::DivZero:
            fail("division by zero");
        case NumError::ModZero:
            fail("modulo by zero");
        case NumError::IntOverflow:
            fail("integer overflow: " + what);
        case NumError::FloatOverflow:
            fail("float overflow: " + what);
        case NumError::ZeroNegPow:
            fail("0.0 cannot be raised to a negative power");
        case NumError::NegFracPow:
            fail("negative number cannot be raised to a fractional power");
        case NumError::Domain:
            fail("math domain error: " + what);
        case NumError::Range:
            fail("math range error: " + what);
        case NumError::NanToInt:
            fail("cannot convert float NaN to integer");
        case NumError::InfToInt:
            fail("cannot convert float infinity to integer");
        case NumError::NotNumber:
            break;
    }
    fail("not a number: " + what);
}

}  // namespace chanflow::expr
