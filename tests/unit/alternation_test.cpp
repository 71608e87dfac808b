// Alternation tests: the CSP scenarios of CSP-SCENARIOS.md that choose between guards
// (input, output, timeout, skip; fair and priority choice), and poison/retire in a choice.
// Every scenario runs on 1, 2 and 4 workers; the timing-sensitive ones also with no delay,
// a fixed 10 ms delay and random 0–10 ms delays on each side (csp_util.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <numeric>
#include <string>
#include <vector>

#include "csp_util.hpp"

using namespace chanflow;
using namespace chanflow::test;
using detail::Channel;

namespace {

std::vector<std::int64_t> range(int from, int to) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(to - from));
    std::iota(v.begin(), v.end(), from);
    return v;
}

// `n` channels named prefix0..prefix{n-1}.
std::vector<Channel*> channels(Harness& h, const std::string& prefix, int n, std::size_t cap) {
    std::vector<Channel*> v;
    for (int i = 0; i < n; ++i) v.push_back(&h.channel(prefix + std::to_string(i), cap));
    return v;
}

}  // namespace

TEST_CASE("alt: fan-in over 4 channels from 4 writers x 10 that retire (scenario 5)") {
    struct Variant {
        Delay delay;
        std::size_t capacity;
    };
    const Variant variants[] = {
        {Delay::None, 0}, {Delay::None, 3}, {Delay::Fixed, 0}, {Delay::Random, 0}};
    for (unsigned workers : kWorkerCounts)
        for (Variant v : variants) {
            CAPTURE(workers);
            CAPTURE(delay_name(v.delay));
            CAPTURE(v.capacity);
            Harness h(workers);
            auto chans = channels(h, "c", 4, v.capacity);
            for (int w = 0; w < 4; ++w) {
                auto& p = h.process("w" + std::to_string(w), [&, w](ProcessContext& ctx) -> Task {
                    Pacer pace(v.delay, 10 + w);
                    auto& out = ctx.out();
                    for (int i = 0; i < 10; ++i) {
                        co_await sleep_for(pace.next());
                        co_await out.write(tagged(w, i));
                    }
                });
                h.writes(p, "out", *chans[static_cast<std::size_t>(w)]);
            }
            std::vector<std::int64_t> got;
            bool index_matches = true, ended = false;
            auto& r = h.process("merge", [&](ProcessContext& ctx) -> Task {
                Pacer pace(v.delay, 20);
                Alternation alt;
                for (auto* in : ctx.ins("in")) alt.add_input(*in);
                for (;;) {
                    co_await sleep_for(pace.next());
                    auto res = co_await alt.select();
                    if (res.kind == AltResult::End) break;
                    const auto x = res.value.as_int();
                    if (res.kind != AltResult::Read || writer_of(x) != static_cast<int>(res.index))
                        index_matches = false;
                    got.push_back(x);
                }
                ended = true;
            });
            for (auto* c : chans) h.reads(r, "in", *c);
            check_ok(h.run());
            auto all = got;
            std::sort(all.begin(), all.end());
            std::vector<std::int64_t> want;
            for (int w = 0; w < 4; ++w)
                for (int i = 0; i < 10; ++i) want.push_back(tagged(w, i).as_int());
            CHECK(all == want);
            CHECK(fifo_per_writer(got));
            CHECK(index_matches);
            CHECK(ended);
        }
}

// ---- poison in an alternation (scenario 11) -----------------------------------------------

TEST_CASE("alt: poison while blocked in an alternation fails it, other guards stay usable") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            Harness h(workers);
            auto& a = h.channel("a", 0);
            auto& b = h.channel("b", 0);
            auto& ack = h.channel("ack", 0);
            // `a` stays unready until the chooser has seen the poison (ack), so the
            // alternation can only fail; then a's guard must have left a's queue, or the
            // write below would hand its message to a stale waiter.
            auto& other = h.process("other", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 30);
                co_await sleep_for(pace.next());
                ctx.out("b").poison();
                co_await ctx.in("ack").read();
                co_await ctx.out("a").write(5);
            });
            h.writes(other, "a", a);
            h.writes(other, "b", b);
            h.reads(other, "ack", ack);
            int failures = 0;
            std::int64_t after = -1;
            auto& r = h.process("chooser", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 31);
                co_await sleep_for(pace.next());
                Alternation alt;
                alt.add_input(ctx.in("a"));
                alt.add_input(ctx.in("b"));
                try {
                    co_await alt.select();
                } catch (const Poisoned&) {
                    ++failures;
                }
                co_await ctx.out("ack").write(true);
                if (auto x = co_await ctx.in("a").read()) after = x->as_int();
                try {
                    co_await alt.select();  // b is still poisoned
                } catch (const Poisoned&) {
                    ++failures;
                }
            });
            h.reads(r, "a", a);
            h.reads(r, "b", b);
            h.writes(r, "ack", ack);
            check_ok(h.run());
            CHECK(failures == 2);
            CHECK(after == 5);
            CHECK_FALSE(a.poisoned());
            CHECK(b.poisoned());
        }
}

TEST_CASE("alt: an alternation on a channel poisoned before it starts fails at once") {
    for (unsigned workers : kWorkerCounts)
        for (bool priority : {false, true}) {
            CAPTURE(workers);
            CAPTURE(priority);
            Harness h(workers);
            auto& a = h.channel("a", 0);
            auto& b = h.channel("b", 0);
            auto& go = h.channel("go", 0);
            auto& p = h.process("poisoner", [&](ProcessContext& ctx) -> Task {
                ctx.out("b").poison();
                co_return;  // retires go: the chooser starts after the poison
            });
            h.writes(p, "b", b);
            h.writes(p, "go", go);
            bool failed = false;
            auto& r = h.process("chooser", [&](ProcessContext& ctx) -> Task {
                co_await ctx.in("go").read();
                Alternation alt(priority);
                alt.add_input(ctx.in("a"));  // never ready: a's writer end is never used
                alt.add_input(ctx.in("b"));
                try {
                    co_await alt.select();
                } catch (const Poisoned&) {
                    failed = true;
                }
            });
            h.reads(r, "go", go);
            h.reads(r, "a", a);
            h.reads(r, "b", b);
            // The writer end of `a` belongs to nobody, so the run ends only because the
            // chooser returned.
            check_ok(h.run());
            CHECK(failed);
        }
}

TEST_CASE("alt: poison while blocked on an output guard fails the alternation") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            Harness h(workers);
            auto& c = h.channel("c", 0);
            bool failed = false;
            auto& w = h.process("offerer", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 32);
                co_await sleep_for(pace.next());
                Alternation alt;
                alt.add_output(ctx.out(), Value(1));
                try {
                    co_await alt.select();
                } catch (const Poisoned&) {
                    failed = true;
                }
            });
            auto& r = h.process("poisoner", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 33);
                co_await sleep_for(pace.next());
                ctx.in().poison();
                co_return;
            });
            h.writes(w, "out", c);
            h.reads(r, "in", c);
            check_ok(h.run());
            CHECK(failed);
            CHECK(c.counters().writes == 0);
        }
}

// ---- timeout and skip ---------------------------------------------------------------------

TEST_CASE(
    "alt: 10 alternations with a timeout and one late write: 9 timeouts, 1 message "
    "(scenario 14)") {
    // The scenario's 100 ms timeout and 500 ms write, scaled down by 2 to save time.
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 0);
        auto& done = h.channel("done", 0);
        auto& w = h.process("late", [&](ProcessContext& ctx) -> Task {
            co_await sleep_for(250ms);
            co_await ctx.out().write(99);
            // Stay until the reader is done: a retired input would end its alternation.
            co_await ctx.in("done").read();
        });
        h.writes(w, "out", c);
        h.reads(w, "done", done);
        int timeouts = 0, reads = 0, other = 0;
        std::int64_t value = -1;
        auto& r = h.process("waiter", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            alt.add_input(ctx.in());
            alt.set_timeout(50ms);
            for (int i = 0; i < 10; ++i) {
                auto res = co_await alt.select();
                if (res.kind == AltResult::Timeout) {
                    ++timeouts;
                } else if (res.kind == AltResult::Read) {
                    ++reads;
                    value = res.value.as_int();
                } else {
                    ++other;
                }
            }
        });
        h.reads(r, "in", c);
        h.writes(r, "done", done);
        check_ok(h.run());
        CHECK(timeouts == 9);
        CHECK(reads == 1);
        CHECK(other == 0);
        CHECK(value == 99);
    }
}

TEST_CASE("alt: a timeout cancelled by a message never wakes the process later") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 0);
        auto& d = h.channel("d", 0);
        auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
            co_await sleep_for(1ms);
            co_await ctx.out("c").write(1);
            co_await sleep_for(60ms);  // past the cancelled 30 ms timeout
            co_await ctx.out("d").write(2);
        });
        h.writes(w, "c", c);
        h.writes(w, "d", d);
        AltResult::Kind kind = AltResult::End;
        std::int64_t from_d = -1;
        bool poisoned = false;
        auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            alt.add_input(ctx.in("c"));
            alt.set_timeout(30ms);
            kind = (co_await alt.select()).kind;
            try {
                // A stale timer would resume this read early, as if poisoned.
                if (auto x = co_await ctx.in("d").read()) from_d = x->as_int();
            } catch (const Poisoned&) {
                poisoned = true;
            }
        });
        h.reads(r, "c", c);
        h.reads(r, "d", d);
        check_ok(h.run());
        CHECK(kind == AltResult::Read);
        CHECK(from_d == 2);
        CHECK_FALSE(poisoned);
    }
}

TEST_CASE("alt: a zero timeout races a writer without losing its message") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 0);
        auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
            auto& out = ctx.out();
            for (int i = 0; i < 50; ++i) {
                co_await sleep_for(std::chrono::microseconds(i % 7 * 50));
                co_await out.write(i);
            }
        });
        h.writes(w, "out", c);
        std::vector<std::int64_t> got;
        int timeouts = 0;
        auto& r = h.process("poller", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            alt.add_input(ctx.in());
            alt.set_timeout(0ns);
            for (;;) {
                auto res = co_await alt.select();
                if (res.kind == AltResult::End) break;
                if (res.kind == AltResult::Timeout)
                    ++timeouts;
                else
                    got.push_back(res.value.as_int());
            }
        });
        h.reads(r, "in", c);
        check_ok(h.run());
        CHECK(got == range(0, 50));
        MESSAGE("zero-timeout polls that timed out: " << timeouts);
    }
}

TEST_CASE("alt: inputs that all retired end the alternation, even with a timeout set") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c1 = h.channel("c1", 0);
        auto& c2 = h.channel("c2", 0);
        auto& quick = h.process("quick", [&](ProcessContext&) -> Task { co_return; });
        auto& slow = h.process("slow", [&](ProcessContext& ctx) -> Task {
            co_await sleep_for(20ms);
            co_await ctx.out().write(7);
        });
        h.writes(quick, "out", c1);
        h.writes(slow, "out", c2);
        std::vector<AltResult::Kind> kinds;
        std::int64_t value = -1;
        auto& r = h.process("chooser", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            for (auto* in : ctx.ins("in")) alt.add_input(*in);
            alt.set_timeout(std::chrono::seconds(5));
            for (int i = 0; i < 3; ++i) {
                auto res = co_await alt.select();
                kinds.push_back(res.kind);
                if (res.kind == AltResult::Read) value = res.value.as_int();
            }
        });
        h.reads(r, "in", c1);
        h.reads(r, "in", c2);
        check_ok(h.run());
        // c1's retirement leaves the choice without ending it; c2's message comes; then
        // both retired: End, at once and again (no 5 s timeout).
        CHECK(kinds ==
              std::vector<AltResult::Kind>{AltResult::Read, AltResult::End, AltResult::End});
        CHECK(value == 7);
    }
}

TEST_CASE("alt: skip returns at once, priority with a ready input picks it (scenario 15)") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& idle = h.channel("idle", 0);  // its writer end is never used
        auto& ready = h.channel("ready", 2);
        auto& go = h.channel("go", 0);
        auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
            co_await ctx.out().write(3);  // buffered
            co_await ctx.out().write(4);
            co_return;  // retires `ready`, then go
        });
        h.writes(w, "out", ready);
        h.writes(w, "go", go);
        std::vector<AltResult::Kind> kinds;
        std::vector<std::int64_t> values;
        auto& r = h.process("chooser", [&](ProcessContext& ctx) -> Task {
            auto record = [&](const AltResult& res) {
                kinds.push_back(res.kind);
                values.push_back(res.kind == AltResult::Read ? res.value.as_int() : -1);
            };
            {
                // Nothing can be ready: skip returns at once.
                Alternation alt;
                alt.add_input(ctx.in("idle"));
                alt.set_skip(true);
                record(co_await alt.select());
            }
            co_await ctx.in("go").read();  // both messages are buffered now
            {
                // Fair choice over (idle, ready) with skip: the ready input wins.
                Alternation alt;
                alt.add_input(ctx.in("idle"));
                alt.add_input(ctx.in("ready"));
                alt.set_skip(true);
                record(co_await alt.select());
            }
            {
                // Priority (ready, skip) with ready ready: ready.
                Alternation alt(true);
                alt.add_input(ctx.in("ready"));
                alt.set_skip(true);
                record(co_await alt.select());
                // Drained and retired: End, not Skip.
                record(co_await alt.select());
            }
        });
        h.reads(r, "idle", idle);
        h.reads(r, "ready", ready);
        h.reads(r, "go", go);
        check_ok(h.run());
        CHECK(kinds == std::vector<AltResult::Kind>{AltResult::Skip, AltResult::Read,
                                                    AltResult::Read, AltResult::End});
        CHECK(values == std::vector<std::int64_t>{-1, 3, 4, -1});
    }
}

TEST_CASE("alt: skip never waits, also while a writer is about to write") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 0);
        auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
            auto& out = ctx.out();
            for (int i = 0; i < 20; ++i) {
                co_await sleep_for(std::chrono::microseconds(200));
                co_await out.write(i);
            }
        });
        h.writes(w, "out", c);
        std::vector<std::int64_t> got;
        int skips = 0;
        auto& r = h.process("poller", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            alt.add_input(ctx.in());
            alt.set_skip(true);
            for (;;) {
                auto res = co_await alt.select();
                if (res.kind == AltResult::End) break;
                if (res.kind == AltResult::Skip) {
                    ++skips;
                    co_await sleep_for(std::chrono::microseconds(50));  // poll, politely
                } else {
                    got.push_back(res.value.as_int());
                }
            }
        });
        h.reads(r, "in", c);
        check_ok(h.run());
        CHECK(got == range(0, 20));
        CHECK(skips > 0);
    }
}

// ---- choice: fair and priority ------------------------------------------------------------

namespace {
// `inputs` buffered channels of `per_input` messages each, written (and retired) before the
// chooser starts; the chooser makes `choices` choices and returns the guard indexes chosen.
std::vector<std::size_t> choose_from_full_buffers(unsigned workers, int inputs, int per_input,
                                                  int choices, bool priority) {
    Harness h(workers);
    auto chans = channels(h, "c", inputs, static_cast<std::size_t>(per_input));
    auto& go = h.channel("go", 0, inputs, 1);
    for (int w = 0; w < inputs; ++w) {
        auto& p = h.process("w" + std::to_string(w), [=](ProcessContext& ctx) -> Task {
            auto& out = ctx.out();
            for (int i = 0; i < per_input; ++i) co_await out.write(tagged(w, i));
        });
        h.writes(p, "out", *chans[static_cast<std::size_t>(w)]);
        h.writes(p, "go", go);
    }
    std::vector<std::size_t> chosen;
    auto& r = h.process("chooser", [&](ProcessContext& ctx) -> Task {
        co_await ctx.in("go").read();  // ends once every writer has filled its buffer
        Alternation alt(priority);
        for (auto* in : ctx.ins("in")) alt.add_input(*in);
        for (int i = 0; i < choices; ++i) {
            auto res = co_await alt.select();
            if (res.kind != AltResult::Read) break;
            chosen.push_back(res.index);
        }
    });
    h.reads(r, "go", go);
    for (auto* c : chans) h.reads(r, "in", *c);
    check_ok(h.run());
    return chosen;
}
}  // namespace

TEST_CASE("alt: fair choice between 2 always-ready inputs over 10 000 choices (scenario 18)") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        const auto chosen = choose_from_full_buffers(workers, 2, 10'000, 10'000, false);
        REQUIRE(chosen.size() == 10'000);
        const auto zeros = std::count(chosen.begin(), chosen.end(), 0u);
        CHECK(std::abs(zeros - 5'000) <= 50);  // within 1% of half
        // Both inputs are ready at every choice: neither may be passed over twice running.
        std::size_t longest = 1, run = 1;
        for (std::size_t i = 1; i < chosen.size(); ++i) {
            run = chosen[i] == chosen[i - 1] ? run + 1 : 1;
            longest = std::max(longest, run);
        }
        CHECK(longest == 1);
    }
}

TEST_CASE("alt: fair choice is round-robin, starting after the guard chosen last") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        const auto chosen = choose_from_full_buffers(workers, 3, 20, 30, false);
        REQUIRE(chosen.size() == 30);
        for (std::size_t i = 0; i < chosen.size(); ++i) CHECK(chosen[i] == i % 3);
    }
}

TEST_CASE("alt: neither of 2 busy rendezvous writers starves") {
    // A rendezvous input is ready only once its writer has run again since its last
    // message was taken, so the split depends on scheduling (the woken writer that runs
    // first wins) and on who gets the channel locks: it is not half and half. But neither
    // writer may starve: on one worker the chooser and one writer used to hand the worker
    // back and forth forever while the other writer waited in the run queue.
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        constexpr int kEach = 200, kMaxChoices = 2'000'000;
        Harness h(workers);
        auto chans = channels(h, "c", 2, 0);
        for (int w = 0; w < 2; ++w) {
            auto& p = h.process("w" + std::to_string(w), [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (int i = 0;; ++i) co_await out.write(i);  // until the chooser retires
            });
            h.writes(p, "out", *chans[static_cast<std::size_t>(w)]);
        }
        std::vector<int> counts(2, 0);
        auto& r = h.process("chooser", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            for (auto* in : ctx.ins("in")) alt.add_input(*in);
            for (int i = 0; i < kMaxChoices && std::min(counts[0], counts[1]) < kEach; ++i)
                ++counts[(co_await alt.select()).index];
        });
        for (auto* c : chans) h.reads(r, "in", *c);
        check_ok(h.run());
        MESSAGE("busy rendezvous writers at " << workers << " workers: " << counts[0] << " / "
                                              << counts[1]);
        CHECK(counts[0] >= kEach);
        CHECK(counts[1] >= kEach);
    }
}

TEST_CASE("alt: priority choice always takes the first ready guard") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        const auto chosen = choose_from_full_buffers(workers, 3, 5, 100, true);
        // Input 0 until drained (and retired), then 1, then 2; then End.
        CHECK(chosen == std::vector<std::size_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2});
    }
}

TEST_CASE("alt: a disabled guard is never chosen, and its message stays") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& a = h.channel("a", 1);
        auto& b = h.channel("b", 0);
        auto& wa = h.process("wa", [&](ProcessContext& ctx) -> Task {
            co_await ctx.out().write(1);  // buffered: a is ready from the start
        });
        auto& wb = h.process("wb", [&](ProcessContext& ctx) -> Task {
            co_await sleep_for(10ms);
            co_await ctx.out().write(2);
        });
        h.writes(wa, "out", a);
        h.writes(wb, "out", b);
        std::vector<std::int64_t> got;
        std::size_t index = 99;
        auto& r = h.process("chooser", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            const auto ia = alt.add_input(ctx.in("a"));
            alt.add_input(ctx.in("b"));
            alt.enable(ia, false);
            auto res = co_await alt.select();
            index = res.index;
            got.push_back(res.value.as_int());
            if (auto x = co_await ctx.in("a").read()) got.push_back(x->as_int());
        });
        h.reads(r, "a", a);
        h.reads(r, "b", b);
        check_ok(h.run());
        CHECK(index == 1);
        CHECK(got == std::vector<std::int64_t>{2, 1});
    }
}

// ---- output guards ------------------------------------------------------------------------

TEST_CASE("alt: an output guard writes the offered value, retired readers end it") {
    for (unsigned workers : kWorkerCounts)
        for (std::size_t cap : {0, 2}) {
            CAPTURE(workers);
            CAPTURE(cap);
            Harness h(workers);
            auto& c = h.channel("c", cap);
            int written = 0;
            bool ended = false;
            auto& w = h.process("offerer", [&](ProcessContext& ctx) -> Task {
                Alternation alt;
                const auto g = alt.add_output(ctx.out());
                for (int i = 0;; ++i) {
                    alt.offer(g, i);
                    auto res = co_await alt.select();
                    if (res.kind == AltResult::End) break;
                    if (res.kind == AltResult::Written && res.index == g) ++written;
                }
                ended = true;  // the reader retired: the guard left the choice
            });
            std::vector<std::int64_t> got;
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                auto& in = ctx.in();
                for (int i = 0; i < 10; ++i)
                    if (auto x = co_await in.read()) got.push_back(x->as_int());
            });
            h.writes(w, "out", c);
            h.reads(r, "in", c);
            check_ok(h.run());
            CHECK(got == range(0, 10));
            CHECK(ended);
            CHECK(written >= 10);
            // Beyond the 10 read: what the channel buffers, and what the reader took from it
            // but never read when it retired (a single reader takes the buffer whole, so up to
            // twice the capacity can be on the way; docs/semantics.md).
            const int on_the_way = cap == 0 ? 0 : 2 * static_cast<int>(cap) - 1;
            CHECK(written <= 10 + on_the_way);
        }
}

TEST_CASE("alt: input and output guards together make a bounded buffer process") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            const int count = delay == Delay::None ? 500 : 10;
            Harness h(workers);
            auto& up = h.channel("up", 0);
            auto& down = h.channel("down", 0);
            auto& src = h.process("src", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 70);
                auto& out = ctx.out();
                for (int i = 0; i < count; ++i) {
                    co_await sleep_for(pace.next());
                    co_await out.write(i);
                }
            });
            std::size_t most_held = 0;
            auto& buf = h.process("buffer", [&](ProcessContext& ctx) -> Task {
                std::deque<Value> held;
                Alternation alt;
                const auto in = alt.add_input(ctx.in());
                const auto out = alt.add_output(ctx.out());
                for (;;) {
                    alt.enable(in, held.size() < 3);
                    alt.enable(out, !held.empty());
                    if (!held.empty()) alt.offer(out, held.front());
                    auto res = co_await alt.select();
                    if (res.kind == AltResult::End) break;  // input retired, nothing held
                    if (res.kind == AltResult::Read)
                        held.push_back(std::move(res.value));
                    else
                        held.pop_front();
                    most_held = std::max(most_held, held.size());
                }
            });
            std::vector<std::int64_t> got;
            auto& dst = h.process("dst", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 71);
                auto& in = ctx.in();
                for (;;) {
                    co_await sleep_for(pace.next());
                    auto x = co_await in.read();
                    if (!x) break;
                    got.push_back(x->as_int());
                }
            });
            h.writes(src, "out", up);
            h.reads(buf, "in", up);
            h.writes(buf, "out", down);
            h.reads(dst, "in", down);
            check_ok(h.run());
            CHECK(got == range(0, count));
            CHECK(most_held <= 3);
        }
}

TEST_CASE("alt: an output guard meets an input guard of another alternation") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        constexpr int kCount = 2'000;
        Harness h(workers);
        auto chans = channels(h, "c", 2, 0);
        auto& w = h.process("offerer", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            for (auto* out : ctx.outs("out")) alt.add_output(*out);
            for (int i = 0; i < kCount; ++i) {
                alt.offer(0, i);
                alt.offer(1, i);
                co_await alt.select();
            }
        });
        std::vector<std::int64_t> got;
        auto& r = h.process("chooser", [&](ProcessContext& ctx) -> Task {
            Alternation alt;
            for (auto* in : ctx.ins("in")) alt.add_input(*in);
            for (;;) {
                auto res = co_await alt.select();
                if (res.kind == AltResult::End) break;
                got.push_back(res.value.as_int());
            }
        });
        for (auto* c : chans) {
            h.writes(w, "out", *c);
            h.reads(r, "in", *c);
        }
        check_ok(h.run());
        CHECK(got == range(0, kCount));
    }
}

TEST_CASE("alt: alternations at both ends of two any2any channels deliver each message once") {
    // 3 writers offer each message on both c and d; 3 readers choose between c and d. Every
    // match claims one writer's and one reader's alternation: nothing is lost or doubled.
    constexpr int kSide = 3, kCount = 300;
    for (unsigned workers : kWorkerCounts)
        for (std::size_t cap : {0, 2}) {
            CAPTURE(workers);
            CAPTURE(cap);
            Harness h(workers);
            auto& c = h.channel("c", cap, kSide, kSide);
            auto& d = h.channel("d", cap, kSide, kSide);
            for (int w = 0; w < kSide; ++w) {
                auto& p = h.process("w" + std::to_string(w), [&, w](ProcessContext& ctx) -> Task {
                    Alternation alt;
                    for (auto* out : ctx.outs("out")) alt.add_output(*out);
                    for (int i = 0; i < kCount; ++i) {
                        alt.offer(0, tagged(w, i));
                        alt.offer(1, tagged(w, i));
                        co_await alt.select();
                    }
                });
                h.writes(p, "out", c);
                h.writes(p, "out", d);
            }
            std::vector<std::vector<std::int64_t>> got(kSide);
            for (int r = 0; r < kSide; ++r) {
                auto& p = h.process("r" + std::to_string(r), [&, r](ProcessContext& ctx) -> Task {
                    Alternation alt;
                    for (auto* in : ctx.ins("in")) alt.add_input(*in);
                    for (;;) {
                        auto res = co_await alt.select();
                        if (res.kind == AltResult::End) break;
                        got[r].push_back(res.value.as_int());
                    }
                });
                h.reads(p, "in", c);
                h.reads(p, "in", d);
            }
            check_ok(h.run());
            std::vector<std::int64_t> all, want;
            for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
            std::sort(all.begin(), all.end());
            for (int w = 0; w < kSide; ++w)
                for (int i = 0; i < kCount; ++i) want.push_back(tagged(w, i).as_int());
            CHECK(all == want);
            CHECK(c.counters().writes + d.counters().writes == want.size());
        }
}

TEST_CASE("alt: a ring of 4 alternations {write c_i, read c_i-1}, 10 000 each (scenario 16)") {
    constexpr int kRing = 4, kChoices = 10'000;
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto chans = channels(h, "c", kRing, 0);
        std::vector<int> writes(kRing, 0), reads(kRing, 0), choices(kRing, 0);
        for (int i = 0; i < kRing; ++i) {
            auto& p = h.process("p" + std::to_string(i), [&, i](ProcessContext& ctx) -> Task {
                Alternation alt;
                const auto out = alt.add_output(ctx.out(), Value(i));
                alt.add_input(ctx.in());
                for (int k = 0; k < kChoices; ++k) {
                    auto res = co_await alt.select();
                    if (res.kind == AltResult::End) break;  // both neighbours are done
                    ++choices[i];
                    ++(res.index == out ? writes[i] : reads[i]);
                }
            });
            h.writes(p, "out", *chans[static_cast<std::size_t>(i)]);
            h.reads(p, "in", *chans[static_cast<std::size_t>((i + kRing - 1) % kRing)]);
        }
        check_ok(h.run());
        for (int i = 0; i < kRing; ++i) {
            CAPTURE(i);
            // What p_i wrote on c_i, p_i+1 read.
            CHECK(writes[i] == reads[(i + 1) % kRing]);
            CHECK(chans[static_cast<std::size_t>(i)]->counters().writes ==
                  static_cast<std::uint64_t>(writes[i]));
        }
        // A process stops early only when both its neighbours are done, so the first to
        // stop made all its choices.
        CHECK(*std::max_element(choices.begin(), choices.end()) == kChoices);
    }
}
