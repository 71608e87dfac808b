// What the processes and MPI backends hand back from each partition (or rank) besides the
// statistics and traces that chanflow/partitions.hpp merges: the values `collect`
// processes kept.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "chanflow/value.hpp"

namespace chanflow::detail {

/// What `collect` processes kept, flat: each process's name, how many values, the values.
/// (Wrapped in a list and a record, a value nested 64 deep would go past the nesting limit.)
std::string encode_collected(const std::map<std::string, std::vector<Value>>& collected);
/// Adds what encode_collected wrote to `into`; throws CodecError on bytes it did not write.
void merge_collected(const std::string& bytes, std::map<std::string, std::vector<Value>>& into);

}  // namespace chanflow::detail
