// prelude.hpp — the CUDA C every generated kernel starts with (prelude.cpp).
#pragma once

namespace chanflow::gpu {

/// The expression language's arithmetic as device functions; compiles as host C++ too.
extern const char* const kPrelude;

}  // namespace chanflow::gpu
