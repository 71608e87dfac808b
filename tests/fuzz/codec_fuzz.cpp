// libFuzzer target for the codec's decoder (engine/backends/shared/codec.hpp): any input either decodes
// or is refused with a CodecError; what decodes encodes back to exactly the bytes it came
// from. Built with clang's -fsanitize=fuzzer,address,undefined; the test suite runs it for
// a few seconds from the seeds in tests/fuzz/codec_seeds/.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chanflow::detail;
    Decoder d(data, size);
    try {
        while (!d.done()) {
            const std::size_t start = d.offset();
            const chanflow::Value v = d.next();
            Bytes again;
            encode(v, again);
            if (again.size() != d.offset() - start ||
                std::memcmp(again.data(), data + start, again.size()) != 0)
                std::abort();  // decoded something other than what was sent
        }
    } catch (const CodecError&) {
    }
    return 0;
}
