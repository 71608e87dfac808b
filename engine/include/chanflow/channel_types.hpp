// chanflow/channel_types.hpp — the small facts about channels that the graph format, the
// checker, the runtime and the pictures all name: a channel's kind, a binding's delivery
// policy, each with the one name a graph file uses for it, and the default capacity.
// See docs/graph-format.md and docs/semantics.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace chanflow {

/// How many processes write and read a channel: one2one, one2any, any2one, any2any.
enum class ChannelKind : std::uint8_t { One2One, One2Any, Any2One, Any2Any };

/// Which reader gets a message of a channel with several: any (whoever is free),
/// round_robin, hash (by key) or broadcast (every reader).
enum class Deliver : std::uint8_t { Any, RoundRobin, Hash, Broadcast };

/// Messages a channel buffers when the graph does not say (0 would be a rendezvous).
constexpr std::size_t kDefaultCapacity = 64;

inline constexpr std::array<std::pair<ChannelKind, std::string_view>, 4> kChannelKinds = {{
    {ChannelKind::One2One, "one2one"},
    {ChannelKind::One2Any, "one2any"},
    {ChannelKind::Any2One, "any2one"},
    {ChannelKind::Any2Any, "any2any"},
}};

inline constexpr std::array<std::pair<Deliver, std::string_view>, 4> kDeliverPolicies = {{
    {Deliver::Any, "any"},
    {Deliver::RoundRobin, "round_robin"},
    {Deliver::Hash, "hash"},
    {Deliver::Broadcast, "broadcast"},
}};

/// The name of an enum value in one of the tables above; "?" for none. (The names are
/// string literals, so data() is null-terminated.)
template <class E, std::size_t N>
constexpr const char* name_in(const std::array<std::pair<E, std::string_view>, N>& table,
                              E value) noexcept {
    for (const auto& [v, name] : table)
        if (v == value) return name.data();
    return "?";
}

/// The enum value a name stands for in one of the tables above.
template <class E, std::size_t N>
constexpr std::optional<E> value_in(const std::array<std::pair<E, std::string_view>, N>& table,
                                    std::string_view name) noexcept {
    for (const auto& [v, n] : table)
        if (n == name) return v;
    return std::nullopt;
}

constexpr const char* channel_kind_name(ChannelKind k) noexcept {
    return name_in(kChannelKinds, k);
}
constexpr const char* deliver_name(Deliver d) noexcept {
    return name_in(kDeliverPolicies, d);
}

}  // namespace chanflow
