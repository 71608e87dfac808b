// chanflow/detail/waiter.hpp — not API: the engine's records of blocked channel operations.
// The awaiters of chanflow/process.hpp hold one in the coroutine's frame, so that blocking
// allocates nothing and a read that finds a message waiting completes inline; that is why
// the layout is visible here. Nothing in it is for node writers to use.
#pragma once

#include <coroutine>
#include <cstdint>
#include <vector>

#include "chanflow/value.hpp"

namespace chanflow {

class InPort;

namespace detail {
class Channel;
class Scheduler;
struct ProcessState;
struct AltState;

/// Replica of an `ordered: true` process: each read on `in` after the first marks, on these
/// channels (the replica's outputs), that the outputs of the previous input are complete.
void mark_boundaries_on(InPort& in, std::vector<Channel*> outputs);

/// How a channel operation ended; kept in Waiter::outcome.
enum Outcome : std::uint8_t { Pending = 0, Done = 1, Ended = 2, PoisonedOutcome = 3 };

/// A blocked operation's record, linked into a channel's wait queue. It lives in the
/// awaiting coroutine's frame, so blocking allocates nothing.
///
/// Deliberately without member initializers: a read or write that completes at once
/// (the common case) sets only the fields it uses; `prepare()` readies the record for
/// queueing. Holders that always queue value-initialize it (`Waiter w{}`).
struct Waiter {
    ProcessState* process;
    Value* slot;           // reader: where the value goes; writer: the value to give
    AltState* alt;         // set when part of an alternation
    std::uint32_t guard;   // the guard's index within the alternation
    std::uint8_t outcome;  // an Outcome
    bool linked;           // in a channel's wait queue
    Waiter* prev;
    Waiter* next;
    void prepare(ProcessState* p, Value* s) noexcept {
        process = p;
        slot = s;
        alt = nullptr;
        linked = false;
    }
};

/// Ends a process normally from inside a write (all readers of an output retired).
struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept;
    void await_resume() const noexcept {}
};
}  // namespace detail

}  // namespace chanflow
