// Channel and scheduler tests: the CSP scenarios of CSP-SCENARIOS.md that need no
// alternation, plus retire/poison rules, deliver policies, failure and deadlock reports.
// Every scenario runs on 1, 2 and 4 workers; the timing-sensitive ones also with no delay,
// a fixed 10 ms delay and random 0–10 ms delays on each side (csp_util.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "csp_util.hpp"

using namespace chanflow;
using namespace chanflow::test;
using detail::Channel;
using detail::ProcessState;

namespace {

std::vector<std::int64_t> range(int from, int to) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(to - from));
    std::iota(v.begin(), v.end(), from);
    return v;
}

std::vector<std::int64_t> sorted(std::vector<std::int64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// Every message writer w (of `writers`) sends when each sends `count`, sorted.
std::vector<std::int64_t> all_tagged(int writers, int count) {
    std::vector<std::int64_t> v;
    for (int w = 0; w < writers; ++w)
        for (int i = 0; i < count; ++i) v.push_back(tagged(w, i).as_int());
    return v;
}

std::vector<std::int64_t> concat(const std::vector<std::vector<std::int64_t>>& parts) {
    std::vector<std::int64_t> all;
    for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
    return all;
}

// A test variant: a delay mode and a channel capacity.
struct Variant {
    Delay delay;
    std::size_t capacity;
};
// The delays on rendezvous channels, plus a buffered run without delay.
constexpr Variant kRaceVariants[] = {
    {Delay::None, 0}, {Delay::None, 4}, {Delay::Fixed, 0}, {Delay::Random, 0}};

}  // namespace

// ---- retire: the normal end ---------------------------------------------------------------

TEST_CASE("channel: one2one delivers 10 in order, then end of stream (scenario 1)") {
    for (unsigned workers : kWorkerCounts)
        for (std::size_t cap : {0, 4}) {
            CAPTURE(workers);
            CAPTURE(cap);
            Harness h(workers);
            auto& c = h.channel("c", cap);
            std::vector<std::int64_t> got;
            bool writer_ended = false, reader_ended = false;
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (int i = 0; i < 10; ++i) co_await out.write(i);
                writer_ended = true;
            });
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                auto& in = ctx.in();
                while (auto x = co_await in.read()) got.push_back(x->as_int());
                reader_ended = true;
            });
            h.writes(w, "out", c);
            h.reads(r, "in", c);
            check_ok(h.run());
            CHECK(got == range(0, 10));
            CHECK(writer_ended);
            CHECK(reader_ended);
            CHECK(c.empty());
        }
}

TEST_CASE(
    "channel: any2one 4 writers x 10, FIFO per writer, end after the 4th retires "
    "(scenario 2)") {
    for (unsigned workers : kWorkerCounts)
        for (Variant v : kRaceVariants) {
            CAPTURE(workers);
            CAPTURE(delay_name(v.delay));
            CAPTURE(v.capacity);
            Harness h(workers);
            Ticker clock;
            auto& c = h.channel("c", v.capacity, 4, 1);
            std::vector<int> returned_at(4, -1);  // each writer retires right after this
            int end_at = -1;
            std::vector<std::int64_t> got;
            for (int w = 0; w < 4; ++w) {
                auto& p = h.process("w" + std::to_string(w), [&, w](ProcessContext& ctx) -> Task {
                    Pacer pace(v.delay, 10 + w);
                    auto& out = ctx.out();
                    for (int i = 0; i < 10; ++i) {
                        co_await sleep_for(pace.next());
                        co_await out.write(tagged(w, i));
                    }
                    returned_at[w] = clock.tick();
                });
                h.writes(p, "out", c);
            }
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                Pacer pace(v.delay, 1);
                auto& in = ctx.in();
                for (;;) {
                    co_await sleep_for(pace.next());
                    auto x = co_await in.read();
                    if (!x) break;
                    got.push_back(x->as_int());
                }
                end_at = clock.tick();
            });
            h.reads(r, "in", c);
            check_ok(h.run());
            CHECK(sorted(got) == all_tagged(4, 10));
            CHECK(fifo_per_writer(got));
            CHECK(end_at > *std::max_element(returned_at.begin(), returned_at.end()));
        }
}

TEST_CASE("channel: one2any 1 writer x 40, 4 readers, each message once (scenario 3)") {
    for (unsigned workers : kWorkerCounts)
        for (std::size_t cap : {0, 4}) {
            CAPTURE(workers);
            CAPTURE(cap);
            Harness h(workers);
            auto& c = h.channel("c", cap, 1, 4);
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (int i = 0; i < 40; ++i) co_await out.write(i);
            });
            h.writes(w, "out", c);
            std::vector<std::vector<std::int64_t>> got(4);
            std::vector<char> ended(4, false);  // not vector<bool>: written concurrently
            for (int k = 0; k < 4; ++k) {
                auto& r = h.process("r" + std::to_string(k), [&, k](ProcessContext& ctx) -> Task {
                    auto& in = ctx.in();
                    while (auto x = co_await in.read()) got[k].push_back(x->as_int());
                    ended[k] = true;
                });
                h.reads(r, "in", c);
            }
            check_ok(h.run());
            CHECK(sorted(concat(got)) == range(0, 40));
            for (int k = 0; k < 4; ++k) {
                CHECK(ended[k]);
                CHECK(std::is_sorted(got[k].begin(), got[k].end()));  // one FIFO
            }
        }
}

TEST_CASE("channel: any2any NxM delivers every message exactly once (scenario 4)") {
    struct Shape {
        int writers, readers;
    };
    const Shape shapes[] = {{1, 5}, {5, 1}, {5, 5}, {3, 3}};
    for (unsigned workers : kWorkerCounts)
        for (Variant v : kRaceVariants)
            for (Shape s : shapes) {
                CAPTURE(workers);
                CAPTURE(delay_name(v.delay));
                CAPTURE(v.capacity);
                CAPTURE(s.writers);
                CAPTURE(s.readers);
                // Few messages where every operation sleeps; many where none does.
                const int count = v.delay == Delay::None ? 200 : 4;
                Harness h(workers);
                auto& c = h.channel("c", v.capacity, s.writers, s.readers);
                for (int w = 0; w < s.writers; ++w) {
                    auto& p =
                        h.process("w" + std::to_string(w), [&, w](ProcessContext& ctx) -> Task {
                            Pacer pace(v.delay, 100 + w);
                            auto& out = ctx.out();
                            for (int i = 0; i < count; ++i) {
                                co_await sleep_for(pace.next());
                                co_await out.write(tagged(w, i));
                            }
                        });
                    h.writes(p, "out", c);
                }
                std::vector<std::vector<std::int64_t>> got(static_cast<std::size_t>(s.readers));
                for (int k = 0; k < s.readers; ++k) {
                    auto& r =
                        h.process("r" + std::to_string(k), [&, k](ProcessContext& ctx) -> Task {
                            Pacer pace(v.delay, 200 + k);
                            auto& in = ctx.in();
                            for (;;) {
                                co_await sleep_for(pace.next());
                                auto x = co_await in.read();
                                if (!x) break;
                                got[k].push_back(x->as_int());
                            }
                        });
                    h.reads(r, "in", c);
                }
                check_ok(h.run());
                CHECK(sorted(concat(got)) == all_tagged(s.writers, count));
                for (const auto& g : got) CHECK(fifo_per_writer(g));
                // Nothing left behind in the channel.
                const auto total = static_cast<std::uint64_t>(s.writers * count);
                CHECK(c.empty());
                CHECK(c.counters().writes == total);
                CHECK(c.counters().reads == total);
            }
}

TEST_CASE("channel: a rendezvous write completes only when a reader takes the message") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            constexpr int kCount = 5;
            Harness h(workers);
            Ticker clock;
            auto& c = h.channel("c", 0);
            std::vector<int> write_start(kCount), write_done(kCount);
            std::vector<int> read_start(kCount), read_done(kCount);
            std::vector<std::int64_t> got;
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 1);
                auto& out = ctx.out();
                for (int i = 0; i < kCount; ++i) {
                    co_await sleep_for(pace.next());
                    write_start[i] = clock.tick();
                    co_await out.write(i);
                    write_done[i] = clock.tick();
                }
            });
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 2);
                auto& in = ctx.in();
                for (int i = 0; i < kCount; ++i) {
                    co_await sleep_for(pace.next());
                    read_start[i] = clock.tick();
                    auto x = co_await in.read();
                    read_done[i] = clock.tick();
                    got.push_back(x ? x->as_int() : -1);
                }
            });
            h.writes(w, "out", c);
            h.reads(r, "in", c);
            check_ok(h.run());
            CHECK(got == range(0, kCount));
            for (int i = 0; i < kCount; ++i) {
                CAPTURE(i);
                CHECK(write_done[i] > read_start[i]);  // the writer waited for the reader
                CHECK(read_done[i] > write_start[i]);  // and the reader for the writer
            }
        }
}

TEST_CASE("channel: try_read takes what is there now and never waits") {
    // Buffered: with one reader (which takes the buffer whole) and with two.
    for (unsigned workers : kWorkerCounts)
        for (int readers : {1, 2}) {
            CAPTURE(workers);
            CAPTURE(readers);
            Harness h(workers);
            auto& c = h.channel("c", 4, 1, readers);
            auto& go = h.channel("go", 1);
            auto& written = h.channel("written", 1);
            bool empty_first = false, empty_after = false, ended = false;
            std::vector<std::int64_t> got;
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                co_await ctx.in().read();  // go
                for (int i = 1; i <= 3; ++i) co_await ctx.out("out").write(i);
                co_await ctx.out("written").write(0);
            });
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                auto& in = ctx.in("in");
                Value v;
                empty_first = !in.try_read(v);  // nothing written yet: false, at once
                co_await ctx.out().write(0);    // go
                co_await ctx.in("written").read();
                while (in.try_read(v)) got.push_back(v.as_int());
                empty_after = !in.try_read(v);
                ended = !(co_await in.read());  // the end is for read() to say
                CHECK(in.reads() == 3);
            });
            h.reads(w, "in", go);
            h.writes(w, "out", c);
            h.writes(w, "written", written);
            h.reads(r, "in", c);
            h.reads(r, "written", written);
            h.writes(r, "out", go);
            if (readers == 2) {
                auto& idle = h.process("idle", [](ProcessContext&) -> Task { co_return; });
                h.reads(idle, "in", c);
            }
            check_ok(h.run());
            CHECK(empty_first);
            CHECK(got == std::vector<std::int64_t>{1, 2, 3});
            CHECK(empty_after);
            CHECK(ended);
        }
    // Rendezvous: a writer waiting on the channel gives its message.
    Harness h(2);
    auto& c = h.channel("c", 0);
    std::int64_t got = -1;
    bool empty_after = false;
    auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
        co_await ctx.out().write(7);  // waits for a reader
    });
    auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
        co_await sleep_for(20ms);
        Value v;
        if (ctx.in().try_read(v)) got = v.as_int();
        empty_after = !ctx.in().try_read(v);
    });
    h.writes(w, "out", c);
    h.reads(r, "in", c);
    check_ok(h.run());
    CHECK(got == 7);
    CHECK(empty_after);
}

TEST_CASE("channel: try_read on a poisoned channel takes nothing, and read() throws") {
    Harness h(2);
    auto& c = h.channel("c", 4);
    auto& written = h.channel("written", 1);
    bool nothing = false, threw = false;
    auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
        co_await ctx.out("out").write(1);
        ctx.out("out").poison();
        co_await ctx.out("written").write(0);
    });
    auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
        co_await ctx.in("written").read();
        Value v;
        nothing = !ctx.in("in").try_read(v);
        try {
            co_await ctx.in("in").read();
        } catch (const Poisoned&) {
            threw = true;
        }
    });
    h.writes(w, "out", c);
    h.writes(w, "written", written);
    h.reads(r, "in", c);
    h.reads(r, "written", written);
    h.run();
    CHECK(nothing);
    CHECK(threw);
}

TEST_CASE("channel: a write to a rendezvous channel blocks while nobody reads") {
    // The writer gives a message on a rendezvous channel, then signals on a buffered side
    // channel. The reader sleeps first; when it reads the side channel the write must have
    // completed, i.e. the message was taken, which only the reader can do: so the reader
    // sees the signal only after it took the message.
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        std::atomic<bool> taken{false};
        bool signal_before_take = false;
        auto& c = h.channel("c", 0);
        auto& side = h.channel("side", 1);
        auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
            co_await ctx.out("out").write(1);
            co_await ctx.out("side").write(2);
        });
        auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
            co_await sleep_for(20ms);
            // The side channel must still be empty: the writer is stuck in its first write.
            auto& side_in = ctx.in("side");
            Alternation probe;
            probe.add_input(side_in);
            probe.set_skip(true);
            auto early = co_await probe.select();
            signal_before_take = early.kind != AltResult::Skip;
            auto x = co_await ctx.in("in").read();
            taken = x.has_value();
            co_await side_in.read();
        });
        h.writes(w, "out", c);
        h.writes(w, "side", side);
        h.reads(r, "in", c);
        h.reads(r, "side", side);
        check_ok(h.run());
        CHECK(taken);
        CHECK_FALSE(signal_before_take);
    }
}

TEST_CASE("channel: the last writer's retire ends the reader only after the buffer drains") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 8, 2, 1);
        auto& go = h.channel("go", 0, 2, 1);
        for (int w = 0; w < 2; ++w) {
            // c is bound before go, so a writer retires c before go: go's end of stream
            // tells the reader that both writers retired c with 4 messages each buffered.
            auto& p = h.process("w" + std::to_string(w), [&, w](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (int i = 0; i < 4; ++i) co_await out.write(tagged(w, i));
            });
            h.writes(p, "out", c);
            h.writes(p, "go", go);
        }
        std::vector<std::int64_t> got;
        bool go_ended = false, c_ended = false;
        auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
            go_ended = !(co_await ctx.in("go").read());
            auto& in = ctx.in();
            while (auto x = co_await in.read()) got.push_back(x->as_int());
            c_ended = true;
        });
        h.reads(r, "go", go);
        h.reads(r, "in", c);
        check_ok(h.run());
        CHECK(go_ended);
        CHECK(c_ended);
        CHECK(sorted(got) == all_tagged(2, 4));
        CHECK(fifo_per_writer(got));
    }
}

TEST_CASE("channel: a reader blocked on an empty channel ends when the last writer retires") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            Harness h(workers);
            auto& c = h.channel("c", 0, 2, 1);
            auto& quick = h.process("quick", [&](ProcessContext&) -> Task { co_return; });
            auto& slow = h.process("slow", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 3);
                co_await sleep_for(pace.next());
                co_await ctx.out().write(7);
                co_await sleep_for(pace.next());
            });
            std::vector<std::int64_t> got;
            bool ended = false;
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                auto& in = ctx.in();
                while (auto x = co_await in.read()) got.push_back(x->as_int());
                ended = true;
            });
            h.writes(quick, "out", c);
            h.writes(slow, "out", c);
            h.reads(r, "in", c);
            check_ok(h.run());
            CHECK(got == std::vector<std::int64_t>{7});  // one writer retiring ends nothing
            CHECK(ended);
        }
}

TEST_CASE("channel: when every reader retires, a write ends the writer normally") {
    for (unsigned workers : kWorkerCounts)
        for (std::size_t cap : {0, 3}) {
            CAPTURE(workers);
            CAPTURE(cap);
            Harness h(workers);
            auto& c = h.channel("c", cap, 1, 2);
            int written = 0;
            bool after_loop = false;
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (int i = 0; i < 1000; ++i) {
                    co_await out.write(i);
                    ++written;
                }
                after_loop = true;  // not reached: the write unwinds with WriterRetired
            });
            h.writes(w, "out", c);
            std::vector<int> reads(2, 0);
            for (int k = 0; k < 2; ++k) {
                auto& r = h.process("r" + std::to_string(k), [&, k](ProcessContext& ctx) -> Task {
                    auto& in = ctx.in();
                    for (int i = 0; i < 3; ++i)
                        if (co_await in.read()) ++reads[k];
                    in.retire();
                });
                h.reads(r, "in", c);
            }
            check_ok(h.run());
            CHECK_FALSE(after_loop);
            CHECK(reads[0] == 3);
            CHECK(reads[1] == 3);
            // Buffered writes may complete beyond what was read; the rest is discarded.
            CHECK(written >= 6);
            CHECK(written <= 6 + static_cast<int>(cap));
            CHECK(c.empty());
        }
}

TEST_CASE("channel: a buffered writer finishes before any reader starts (scenario 6)") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 10);
        auto& go = h.channel("go", 0);
        // The reader starts reading c only once the writer has returned (go ends): had a
        // write blocked, this would be a deadlock.
        auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
            auto& out = ctx.out();
            for (int i = 0; i < 10; ++i) co_await out.write(i);
        });
        h.writes(w, "out", c);
        h.writes(w, "go", go);
        std::vector<std::int64_t> got;
        bool ended = false;
        auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
            co_await ctx.in("go").read();
            auto& in = ctx.in();
            while (auto x = co_await in.read()) got.push_back(x->as_int());
            ended = true;
        });
        h.reads(r, "go", go);
        h.reads(r, "in", c);
        check_ok(h.run());
        CHECK(got == range(0, 10));
        CHECK(ended);
        CHECK(c.counters().peak == 10);
    }
}

TEST_CASE(
    "channel: termination race of 5 sources x 10 and 5 sinks, ending by retire "
    "(scenario 7)") {
    for (unsigned workers : kWorkerCounts)
        for (Variant v : kRaceVariants) {
            CAPTURE(workers);
            CAPTURE(delay_name(v.delay));
            CAPTURE(v.capacity);
            Harness h(workers);
            auto& c = h.channel("c", v.capacity, 5, 5);
            std::atomic<int> ended{0};
            for (int w = 0; w < 5; ++w) {
                auto& p = h.process("src" + std::to_string(w), [&, w](ProcessContext& ctx) -> Task {
                    Pacer pace(v.delay, 300 + w);
                    auto& out = ctx.out();
                    for (int i = 0; i < 10; ++i) {
                        co_await sleep_for(pace.next());
                        co_await out.write(tagged(w, i));
                    }
                    ++ended;
                });
                h.writes(p, "out", c);
            }
            std::vector<std::vector<std::int64_t>> got(5);
            for (int k = 0; k < 5; ++k) {
                auto& p =
                    h.process("sink" + std::to_string(k), [&, k](ProcessContext& ctx) -> Task {
                        Pacer pace(v.delay, 400 + k);
                        auto& in = ctx.in();
                        for (;;) {
                            co_await sleep_for(pace.next());
                            auto x = co_await in.read();
                            if (!x) break;
                            got[k].push_back(x->as_int());
                        }
                        ++ended;
                    });
                h.reads(p, "in", c);
            }
            check_ok(h.run());
            CHECK(sorted(concat(got)) == all_tagged(5, 10));
            CHECK(ended == 10);
        }
}

// ---- poison: the error end ----------------------------------------------------------------

TEST_CASE("channel: termination race ending by poison (scenario 8)") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            Harness h(workers);
            auto& c = h.channel("c", 0, 5, 5);
            std::vector<int> written(5, 0);
            std::vector<std::vector<std::int64_t>> got(5);
            std::atomic<int> poisoned_sinks{0}, ended{0};
            for (int w = 0; w < 5; ++w) {
                auto& p = h.process("src" + std::to_string(w), [&, w](ProcessContext& ctx) -> Task {
                    Pacer pace(delay, 500 + w);
                    auto& out = ctx.out();
                    try {
                        for (int i = 0; i < 10; ++i) {
                            co_await sleep_for(pace.next());
                            co_await out.write(tagged(w, i));
                            ++written[w];
                        }
                        out.poison();  // each source ends the stream by poison
                    } catch (const Poisoned&) {
                        ++ended;
                        throw;
                    }
                    ++ended;
                });
                h.writes(p, "out", c);
            }
            for (int k = 0; k < 5; ++k) {
                auto& p =
                    h.process("sink" + std::to_string(k), [&, k](ProcessContext& ctx) -> Task {
                        Pacer pace(delay, 600 + k);
                        auto& in = ctx.in();
                        try {
                            for (;;) {
                                co_await sleep_for(pace.next());
                                auto x = co_await in.read();
                                if (!x) break;
                                got[k].push_back(x->as_int());
                            }
                        } catch (const Poisoned&) {
                            ++poisoned_sinks;
                        }
                        ++ended;
                    });
                h.reads(p, "in", c);
            }
            check_ok(h.run());  // poison is not a failure
            const auto all = sorted(concat(got));
            CAPTURE(all.size());
            CHECK(all.size() >= 10);  // the first source to poison had all 10 taken
            CHECK(all.size() <= 50);
            CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // each once
            // On a rendezvous a completed write is a delivered message, and vice versa.
            const int completed = std::accumulate(written.begin(), written.end(), 0);
            CHECK(static_cast<int>(all.size()) == completed);
            for (const auto& g : got) CHECK(fifo_per_writer(g));
            CHECK(poisoned_sinks == 5);
            CHECK(ended == 10);
            CHECK(c.poisoned());
            CHECK(c.empty());
        }
}

TEST_CASE("channel: poison travels down a pipeline behind the last message (scenario 9)") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            Harness h(workers);
            std::vector<Channel*> chans;
            for (int i = 0; i < 4; ++i) chans.push_back(&h.channel("c" + std::to_string(i), 0));
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 7);
                auto& out = ctx.out();
                for (int i = 0; i < 10; ++i) {
                    co_await sleep_for(pace.next());
                    co_await out.write(i);
                }
                out.poison();
            });
            h.writes(w, "out", *chans[0]);
            std::atomic<int> stages_poisoned{0};
            for (int s = 0; s < 3; ++s) {
                auto& p = h.process("id" + std::to_string(s), [&](ProcessContext& ctx) -> Task {
                    auto& in = ctx.in();
                    auto& out = ctx.out();
                    try {
                        while (auto x = co_await in.read()) co_await out.write(std::move(*x));
                    } catch (const Poisoned&) {
                        ++stages_poisoned;
                        throw;  // the engine poisons this stage's other end
                    }
                });
                h.reads(p, "in", *chans[static_cast<std::size_t>(s)]);
                h.writes(p, "out", *chans[static_cast<std::size_t>(s) + 1]);
            }
            std::vector<std::int64_t> got;
            bool reader_poisoned = false;
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 8);
                auto& in = ctx.in();
                try {
                    for (;;) {
                        co_await sleep_for(pace.next());
                        auto x = co_await in.read();
                        if (!x) break;
                        got.push_back(x->as_int());
                    }
                } catch (const Poisoned&) {
                    reader_poisoned = true;
                }
            });
            h.reads(r, "in", *chans[3]);
            check_ok(h.run());
            CHECK(got == range(0, 10));
            CHECK(stages_poisoned == 3);
            CHECK(reader_poisoned);
            for (auto* ch : chans) CHECK(ch->poisoned());
        }
}

TEST_CASE(
    "channel: poison from the reader fails both writers at their next write "
    "(scenario 10)") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            Harness h(workers);
            auto& c = h.channel("c", 0, 2, 1);
            std::vector<int> written(2, 0);
            std::vector<char> writer_poisoned(2, false);  // not vector<bool>: concurrent
            for (int w = 0; w < 2; ++w) {
                auto& p = h.process("w" + std::to_string(w), [&, w](ProcessContext& ctx) -> Task {
                    Pacer pace(delay, 20 + w);
                    auto& out = ctx.out();
                    try {
                        for (int i = 0; i < 100; ++i) {
                            co_await sleep_for(pace.next());
                            co_await out.write(tagged(w, i));
                            ++written[w];
                        }
                    } catch (const Poisoned&) {
                        writer_poisoned[w] = true;
                        throw;
                    }
                });
                h.writes(p, "out", c);
            }
            std::vector<std::int64_t> got;
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 30);
                auto& in = ctx.in();
                for (int i = 0; i < 20; ++i) {
                    co_await sleep_for(pace.next());
                    if (auto x = co_await in.read()) got.push_back(x->as_int());
                }
                in.poison();
            });
            h.reads(r, "in", c);
            check_ok(h.run());
            REQUIRE(got.size() == 20);
            CHECK(fifo_per_writer(got));
            CHECK(std::set<std::int64_t>(got.begin(), got.end()).size() == 20);
            CHECK(written[0] + written[1] == 20);  // no write completed after the poison
            CHECK(writer_poisoned[0]);
            CHECK(writer_poisoned[1]);
        }
}

TEST_CASE("channel: poison while blocked in a read returns control with poison (scenario 11)") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays)
            for (std::size_t cap : {0, 2}) {
                CAPTURE(workers);
                CAPTURE(delay_name(delay));
                CAPTURE(cap);
                Harness h(workers);
                auto& c = h.channel("c", cap);
                bool first = false, again = false, write_after = false;
                auto& poisoner = h.process("poisoner", [&](ProcessContext& ctx) -> Task {
                    Pacer pace(delay, 40);
                    co_await sleep_for(pace.next());
                    ctx.out().poison();
                    try {
                        co_await ctx.out().write(1);  // every later operation fails too
                    } catch (const Poisoned&) {
                        write_after = true;
                    }
                });
                auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                    Pacer pace(delay, 41);
                    auto& in = ctx.in();
                    co_await sleep_for(pace.next());
                    try {
                        co_await in.read();
                    } catch (const Poisoned&) {
                        first = true;
                    }
                    try {
                        co_await in.read();
                    } catch (const Poisoned&) {
                        again = true;
                    }
                    in.poison();  // poisoning twice is harmless
                });
                h.writes(poisoner, "out", c);
                h.reads(r, "in", c);
                check_ok(h.run());
                CHECK(first);
                CHECK(again);
                CHECK(write_after);
                CHECK(c.poisoned());
                CHECK(c.empty());
                CHECK(c.counters().reads == 0);
            }
}

TEST_CASE("channel: poison while blocked in a write returns control with poison (scenario 11)") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays)
            for (std::size_t cap : {0, 2}) {
                CAPTURE(workers);
                CAPTURE(delay_name(delay));
                CAPTURE(cap);
                Harness h(workers);
                auto& c = h.channel("c", cap);
                int written = 0;
                bool poisoned = false;
                auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                    Pacer pace(delay, 42);
                    auto& out = ctx.out();
                    co_await sleep_for(pace.next());
                    try {
                        for (;;) {  // fills the buffer, then blocks
                            co_await out.write(written);
                            ++written;
                        }
                    } catch (const Poisoned&) {
                        poisoned = true;
                    }
                });
                auto& p = h.process("poisoner", [&](ProcessContext& ctx) -> Task {
                    Pacer pace(delay, 43);
                    co_await sleep_for(pace.next());
                    ctx.in().poison();
                    co_return;
                });
                h.writes(w, "out", c);
                h.reads(p, "in", c);
                check_ok(h.run());
                CHECK(poisoned);
                CHECK(written <= static_cast<int>(cap));
                CHECK(c.poisoned());
                CHECK(c.empty());  // what was buffered is discarded
            }
}

TEST_CASE(
    "channel: late poison: a completed write is read, only the next read fails "
    "(scenario 12)") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            Harness h(workers);
            auto& c = h.channel("c", 0);
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 50);
                co_await sleep_for(pace.next());
                co_await ctx.out().write(42);
                ctx.out().poison();  // at once after the write completed
            });
            std::vector<std::int64_t> got;
            bool next_failed = false;
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 51);
                auto& in = ctx.in();
                co_await sleep_for(pace.next());
                if (auto x = co_await in.read()) got.push_back(x->as_int());
                try {
                    co_await in.read();
                } catch (const Poisoned&) {
                    next_failed = true;
                }
            });
            h.writes(w, "out", c);
            h.reads(r, "in", c);
            check_ok(h.run());
            CHECK(got == std::vector<std::int64_t>{42});
            CHECK(next_failed);
        }
}

// chanflow's rule (channel.cpp): poison is immediate. Whatever is buffered is discarded, by
// whichever end poisons, and every later operation fails: a reader does not drain first.
TEST_CASE("channel: buffered poison from the writer discards the buffer (scenario 13)") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 4);
        auto& go = h.channel("go", 0);
        auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
            auto& out = ctx.out();
            for (int i = 0; i < 3; ++i) co_await out.write(i);  // 3 buffered
            out.poison();
            co_return;  // retires go: the reader starts only now
        });
        h.writes(w, "out", c);
        h.writes(w, "go", go);
        int got = 0;
        bool reader_poisoned = false;
        auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
            co_await ctx.in("go").read();
            try {
                while (co_await ctx.in().read()) ++got;
            } catch (const Poisoned&) {
                reader_poisoned = true;
            }
        });
        h.reads(r, "go", go);
        h.reads(r, "in", c);
        check_ok(h.run());
        CHECK(got == 0);
        CHECK(reader_poisoned);
        CHECK(c.empty());
        CHECK(c.counters().writes == 3);
        CHECK(c.counters().reads == 0);
    }
}

TEST_CASE("channel: buffered poison from the reader fails the writer at once (scenario 13)") {
    for (unsigned workers : kWorkerCounts)
        for (bool blocked : {false, true}) {
            CAPTURE(workers);
            CAPTURE(blocked);
            Harness h(workers);
            auto& c = h.channel("c", 4);
            auto& go = h.channel("go", 1);
            auto& back = h.channel("back", 0);
            int written = 0;
            bool writer_poisoned = false;
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (int i = 0; i < 3; ++i) co_await out.write(i);
                ++written;
                co_await ctx.out("go").write(true);
                try {
                    // Unblocked: wait until the reader has poisoned (back ends), then write.
                    // Blocked: fill the buffer and block in the fifth write.
                    if (!blocked) co_await ctx.in("back").read();
                    for (;;) {
                        co_await out.write(0);
                        ++written;
                    }
                } catch (const Poisoned&) {
                    writer_poisoned = true;
                }
            });
            h.writes(w, "out", c);
            h.writes(w, "go", go);
            h.reads(w, "back", back);
            auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
                co_await ctx.in("go").read();
                if (blocked) co_await sleep_for(10ms);
                ctx.in().poison();
                co_return;  // retires back
            });
            h.reads(r, "go", go);
            h.reads(r, "in", c);
            h.writes(r, "back", back);
            check_ok(h.run());
            CHECK(writer_poisoned);
            if (!blocked) CHECK(written == 1);  // the first write after the poison failed
            CHECK(written <= 2);                // the buffer holds 4: one more at most
            CHECK(c.empty());
            CHECK(c.counters().reads == 0);
        }
}

// ---- deliver policies (one channel per reader end, routed by the writing end) ------------

namespace {
// W writers routing over R reader channels of capacity `cap`; writer w writes `count`
// tagged messages; returns what each reader got, in order.
std::vector<std::vector<std::int64_t>> run_routed(unsigned workers, Deliver deliver, int writers,
                                                  int readers, std::size_t cap, int count,
                                                  std::vector<Value> (*messages)(int,
                                                                                 int) = nullptr) {
    Harness h(workers);
    std::vector<Channel*> targets;
    for (int r = 0; r < readers; ++r)
        targets.push_back(&h.channel("c" + std::to_string(r), cap, writers, 1));
    for (int w = 0; w < writers; ++w) {
        auto& p = h.process("w" + std::to_string(w), [=](ProcessContext& ctx) -> Task {
            auto& out = ctx.out();
            if (messages)
                for (auto& m : messages(w, count)) co_await out.write(m);
            else
                for (int i = 0; i < count; ++i) co_await out.write(tagged(w, i));
        });
        h.writes_routed(p, "out", targets, deliver);
    }
    std::vector<std::vector<Value>> got(static_cast<std::size_t>(readers));
    for (int r = 0; r < readers; ++r) {
        auto& p = h.process("r" + std::to_string(r), [&got, r](ProcessContext& ctx) -> Task {
            auto& in = ctx.in();
            while (auto x = co_await in.read()) got[r].push_back(std::move(*x));
        });
        h.reads(p, "in", *targets[static_cast<std::size_t>(r)]);
    }
    const RunResult res = h.run();
    check_ok(res);
    std::vector<std::vector<std::int64_t>> ints(got.size());
    for (std::size_t r = 0; r < got.size(); ++r)
        for (auto& v : got[r]) ints[r].push_back(v.is_int() ? v.as_int() : -1);
    return ints;
}
}  // namespace

TEST_CASE("channel: deliver round_robin sends message i to reader i mod R") {
    for (unsigned workers : kWorkerCounts)
        for (std::size_t cap : {0, 2})
            for (int writers : {1, 2}) {
                CAPTURE(workers);
                CAPTURE(cap);
                CAPTURE(writers);
                const auto got = run_routed(workers, Deliver::RoundRobin, writers, 3, cap, 9);
                for (int r = 0; r < 3; ++r) {
                    CAPTURE(r);
                    std::vector<std::int64_t> want;
                    for (int w = 0; w < writers; ++w)
                        for (int i = r; i < 9; i += 3) want.push_back(tagged(w, i).as_int());
                    CHECK(sorted(got[r]) == sorted(want));
                    CHECK(fifo_per_writer(got[r]));
                }
            }
}

TEST_CASE("channel: deliver hash sends equal keys to one reader, by the stable hash") {
    // Ints, [key, payload] lists and {key: ...} records, with repeated keys.
    auto messages = [](int, int count) {
        std::vector<Value> v;
        for (int i = 0; i < count; ++i) {
            v.emplace_back(i % 7);
            v.push_back(Value::list({Value("k" + std::to_string(i % 5)), Value(i)}));
            v.emplace_back(Record{{"x", Value(i)}, {"key", Value(i % 3)}});
        }
        return v;
    };
    for (unsigned workers : kWorkerCounts)
        for (std::size_t cap : {0, 2}) {
            CAPTURE(workers);
            CAPTURE(cap);
            Harness h(workers);
            constexpr int kReaders = 3;
            std::vector<Channel*> targets;
            for (int r = 0; r < kReaders; ++r)
                targets.push_back(&h.channel("c" + std::to_string(r), cap));
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (auto& m : messages(0, 20)) co_await out.write(m);
            });
            h.writes_routed(w, "out", targets, Deliver::Hash);
            std::vector<std::vector<Value>> got(kReaders);
            for (int r = 0; r < kReaders; ++r) {
                auto& p = h.process("r" + std::to_string(r), [&, r](ProcessContext& ctx) -> Task {
                    auto& in = ctx.in();
                    while (auto x = co_await in.read()) got[r].push_back(std::move(*x));
                });
                h.reads(p, "in", *targets[static_cast<std::size_t>(r)]);
            }
            check_ok(h.run());
            std::size_t total = 0;
            for (int r = 0; r < kReaders; ++r) {
                total += got[r].size();
                for (const Value& v : got[r]) {
                    const Value& key = v.is_list()     ? v.as_list()[0]
                                       : v.is_record() ? *v.field("key")
                                                       : v;
                    CHECK(stable_hash(key) % kReaders == static_cast<std::uint64_t>(r));
                }
            }
            CHECK(total == 60);
            std::size_t busy = 0;  // 7 + 5 + 3 keys do not all land on one reader
            for (const auto& g : got) busy += g.empty() ? 0 : 1;
            CHECK(busy > 1);
        }
}

TEST_CASE("channel: deliver broadcast gives every reader every message") {
    for (unsigned workers : kWorkerCounts)
        for (std::size_t cap : {0, 2})
            for (int writers : {1, 2}) {
                CAPTURE(workers);
                CAPTURE(cap);
                CAPTURE(writers);
                const auto got = run_routed(workers, Deliver::Broadcast, writers, 3, cap, 10);
                for (const auto& g : got) {
                    CHECK(sorted(g) == all_tagged(writers, 10));
                    CHECK(fifo_per_writer(g));
                }
            }
}

TEST_CASE("channel: a rendezvous broadcast write completes when every reader took it") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            constexpr int kReaders = 3, kCount = 4;
            Harness h(workers);
            Ticker clock;
            std::vector<Channel*> targets;
            for (int r = 0; r < kReaders; ++r)
                targets.push_back(&h.channel("c" + std::to_string(r), 0));
            std::vector<int> write_done(kCount);
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (int i = 0; i < kCount; ++i) {
                    co_await out.write(i);
                    write_done[i] = clock.tick();
                }
            });
            h.writes_routed(w, "out", targets, Deliver::Broadcast);
            std::vector<std::vector<int>> read_start(kReaders, std::vector<int>(kCount));
            std::vector<std::vector<std::int64_t>> got(kReaders);
            for (int r = 0; r < kReaders; ++r) {
                auto& p = h.process("r" + std::to_string(r), [&, r](ProcessContext& ctx) -> Task {
                    Pacer pace(delay, 60 + r);
                    auto& in = ctx.in();
                    for (int i = 0; i < kCount; ++i) {
                        co_await sleep_for(pace.next());
                        read_start[r][i] = clock.tick();
                        if (auto x = co_await in.read()) got[r].push_back(x->as_int());
                    }
                });
                h.reads(p, "in", *targets[static_cast<std::size_t>(r)]);
            }
            check_ok(h.run());
            for (int r = 0; r < kReaders; ++r) {
                CHECK(got[r] == range(0, kCount));
                for (int i = 0; i < kCount; ++i) CHECK(write_done[i] > read_start[r][i]);
            }
        }
}

TEST_CASE("channel: a routed write skips a retired reader, all retired ends the writer") {
    for (unsigned workers : kWorkerCounts)
        for (Deliver d : {Deliver::RoundRobin, Deliver::Hash, Deliver::Broadcast}) {
            CAPTURE(workers);
            CAPTURE(static_cast<int>(d));
            Harness h(workers);
            auto& c0 = h.channel("c0", 0);
            auto& c1 = h.channel("c1", 0);
            bool after_loop = false;
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                for (int i = 0; i < 1000; ++i) co_await out.write(i);
                after_loop = true;  // not reached: r0 retires after 10 messages
            });
            h.writes_routed(w, "out", {&c0, &c1}, d);
            std::vector<std::int64_t> got;
            auto& r0 = h.process("r0", [&](ProcessContext& ctx) -> Task {
                auto& in = ctx.in();
                for (int i = 0; i < 10; ++i)
                    if (auto x = co_await in.read()) got.push_back(x->as_int());
            });
            auto& r1 = h.process("r1", [&](ProcessContext&) -> Task { co_return; });
            h.reads(r0, "in", c0);
            h.reads(r1, "in", c1);
            check_ok(h.run());
            CHECK_FALSE(after_loop);
            REQUIRE(got.size() == 10);
            // Whatever the policy, a message for the retired r1 goes to the next live reader
            // (none is lost), so r0 gets every message in order.
            CHECK(got == range(0, 10));
        }
}

TEST_CASE("channel: poison of one routed target fails the writer and reaches every reader") {
    for (unsigned workers : kWorkerCounts)
        for (Deliver d : {Deliver::RoundRobin, Deliver::Broadcast}) {
            CAPTURE(workers);
            CAPTURE(static_cast<int>(d));
            Harness h(workers);
            std::vector<Channel*> targets{&h.channel("c0", 1), &h.channel("c1", 1),
                                          &h.channel("c2", 1)};
            bool writer_poisoned = false;
            auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
                auto& out = ctx.out();
                try {
                    for (int i = 0;; ++i) co_await out.write(i);
                } catch (const Poisoned&) {
                    writer_poisoned = true;
                    throw;
                }
            });
            h.writes_routed(w, "out", targets, d);
            std::atomic<int> readers_poisoned{0};
            for (int r = 0; r < 3; ++r) {
                auto& p = h.process("r" + std::to_string(r), [&, r](ProcessContext& ctx) -> Task {
                    auto& in = ctx.in();
                    try {
                        for (int i = 0;; ++i) {
                            if (r == 1 && i == 5) in.poison();
                            co_await in.read();
                        }
                    } catch (const Poisoned&) {
                        ++readers_poisoned;
                    }
                });
                h.reads(p, "in", *targets[static_cast<std::size_t>(r)]);
            }
            check_ok(h.run());
            CHECK(writer_poisoned);
            CHECK(readers_poisoned == 3);
            for (auto* t : targets) CHECK(t->poisoned());
        }
}

// ---- failure and deadlock ----------------------------------------------------------------

TEST_CASE("scheduler: a body that throws fails the run, naming it, and the rest stop") {
    for (unsigned workers : kWorkerCounts)
        for (Delay delay : kDelays) {
            CAPTURE(workers);
            CAPTURE(delay_name(delay));
            Harness h(workers);
            auto& a = h.channel("a", 0);
            auto& b = h.channel("b", 2);
            bool src_poisoned = false, sink_poisoned = false;
            auto& src = h.process("src", [&](ProcessContext& ctx) -> Task {
                Pacer pace(delay, 70);
                auto& out = ctx.out();
                try {
                    for (int i = 0;; ++i) {  // forever, until the failure stops it
                        co_await sleep_for(pace.next());
                        co_await out.write(i);
                    }
                } catch (const Poisoned&) {
                    src_poisoned = true;
                    throw;
                }
            });
            auto& mid = h.process("mid", [&](ProcessContext& ctx) -> Task {
                auto& in = ctx.in();
                auto& out = ctx.out();
                for (int n = 0;; ++n) {
                    auto x = co_await in.read();
                    if (n == 4) throw std::runtime_error("boom");
                    co_await out.write(std::move(*x));
                }
            });
            auto& sink = h.process("sink", [&](ProcessContext& ctx) -> Task {
                try {
                    while (co_await ctx.in().read()) {
                    }
                } catch (const Poisoned&) {
                    sink_poisoned = true;
                    throw;
                }
            });
            h.writes(src, "out", a);
            h.reads(mid, "in", a);
            h.writes(mid, "out", b);
            h.reads(sink, "in", b);
            const RunResult r = h.run();
            CHECK(r.status == RunStatus::Failed);
            CHECK(r.exit_code() == 1);
            CHECK(r.message == "process 'mid' failed: boom");
            CHECK(src_poisoned);
            CHECK(sink_poisoned);
        }
}

TEST_CASE("scheduler: the first failure is the one reported") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 0);
        auto& first = h.process("first", [&](ProcessContext&) -> Task {
            throw std::runtime_error("first failure");
            co_return;
        });
        // Fails too, but only because the first failure poisoned its input.
        auto& second = h.process("second", [&](ProcessContext& ctx) -> Task {
            try {
                co_await ctx.in().read();
            } catch (const Poisoned&) {
                throw std::logic_error("second failure");
            }
        });
        h.writes(first, "out", c);
        h.reads(second, "in", c);
        const RunResult r = h.run();
        CHECK(r.status == RunStatus::Failed);
        CHECK(r.message == "process 'first' failed: first failure");
    }
}

TEST_CASE("scheduler: a failure wins over the deadlock it causes") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 0);
        auto& lonely = h.channel("lonely", 0);  // has a writer end nobody uses
        auto& a = h.process("a", [&](ProcessContext&) -> Task {
            co_await sleep_for(5ms);
            throw std::runtime_error("bad input");
        });
        auto& b = h.process("b", [&](ProcessContext& ctx) -> Task {
            co_await ctx.in("lonely").read();  // nobody will ever write: deadlock
        });
        h.writes(a, "out", c);
        h.reads(b, "in", c);
        h.reads(b, "lonely", lonely);
        const RunResult r = h.run();
        CHECK(r.status == RunStatus::Failed);
        CHECK(r.message == "process 'a' failed: bad input");
    }
}

TEST_CASE("scheduler: a read nobody will ever match is a deadlock (scenario 17)") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c1 = h.channel("c1", 0);
        bool unwound = false;
        auto& a = h.process("a", [&](ProcessContext& ctx) -> Task {
            try {
                co_await ctx.in().read();
            } catch (const Poisoned&) {
                unwound = true;  // the runtime unblocks deadlocked processes by poison
                throw;
            }
        });
        h.reads(a, "in", c1);
        const RunResult r = h.run();
        CHECK(r.status == RunStatus::Deadlock);
        CHECK(r.exit_code() == 3);
        CHECK(r.message == "deadlock: 'a' waits to read 'c1' (empty)");
        CHECK(r.blocked == std::vector<std::string>{"'a' waits to read 'c1' (empty)"});
        CHECK(unwound);
    }
}

TEST_CASE("scheduler: a deadlock report names each blocked process, channel and peer") {
    SUBCASE("a cycle of reads") {
        for (unsigned workers : kWorkerCounts) {
            CAPTURE(workers);
            Harness h(workers);
            auto& c1 = h.channel("c1", 0);
            auto& c2 = h.channel("c2", 0);
            auto body = [](ProcessContext& ctx) -> Task {
                auto x = co_await ctx.in().read();
                co_await ctx.out().write(std::move(*x));
            };
            auto& a = h.process("a", body);
            auto& b = h.process("b", body);
            h.reads(a, "in", c1);
            h.writes(a, "out", c2);
            h.reads(b, "in", c2);
            h.writes(b, "out", c1);
            const RunResult r = h.run();
            CHECK(r.status == RunStatus::Deadlock);
            CHECK(r.message ==
                  "deadlock: 'a' waits to read 'c1' (empty, writer 'b' waits to read 'c2')\n"
                  "deadlock: 'b' waits to read 'c2' (empty, writer 'a' waits to read 'c1')");
        }
    }
    SUBCASE("writes on a rendezvous and on a full buffer") {
        for (unsigned workers : kWorkerCounts)
            for (std::size_t cap : {0, 1}) {
                CAPTURE(workers);
                CAPTURE(cap);
                Harness h(workers);
                auto& c1 = h.channel("c1", cap);
                auto& c2 = h.channel("c2", 0);
                auto& a = h.process("a", [&](ProcessContext& ctx) -> Task {
                    for (std::size_t i = 0; i <= cap; ++i) co_await ctx.out("out").write(1);
                    co_await ctx.out("out2").write(2);
                });
                auto& b = h.process("b", [&](ProcessContext& ctx) -> Task {
                    co_await ctx.in("in2").read();
                    co_await ctx.in().read();
                });
                h.writes(a, "out", c1);
                h.writes(a, "out2", c2);
                h.reads(b, "in", c1);
                h.reads(b, "in2", c2);
                const RunResult r = h.run();
                CHECK(r.status == RunStatus::Deadlock);
                const std::string state = cap == 0 ? "rendezvous" : "full";
                CHECK(r.message == "deadlock: 'a' waits to write 'c1' (" + state +
                                       ", reader 'b' waits to read 'c2')\n"
                                       "deadlock: 'b' waits to read 'c2' (empty, writer 'a' "
                                       "waits to write 'c1')");
            }
    }
    SUBCASE("an alternation; processes that ended are not listed") {
        for (unsigned workers : kWorkerCounts) {
            CAPTURE(workers);
            Harness h(workers);
            auto& c1 = h.channel("c1", 0);
            auto& c2 = h.channel("c2", 0);
            auto& c3 = h.channel("c3", 1);
            auto& done = h.process("done", [&](ProcessContext& ctx) -> Task {
                co_await ctx.out().write(1);  // buffered: returns at once
            });
            auto& a = h.process("a", [&](ProcessContext& ctx) -> Task {
                co_await ctx.in("in3").read();
                Alternation alt;
                alt.add_input(ctx.in("in1"));
                alt.add_input(ctx.in("in2"));
                co_await alt.select();
            });
            h.writes(done, "out", c3);
            h.reads(a, "in3", c3);
            h.reads(a, "in1", c1);
            h.reads(a, "in2", c2);
            const RunResult r = h.run();
            CHECK(r.status == RunStatus::Deadlock);
            CHECK(r.message == "deadlock: 'a' waits in an alternation on 'c1', 'c2'");
        }
    }
}

TEST_CASE("scheduler: a deadlock in a routed write names the target it waits on") {
    // The broadcast reaches c0's reader, then waits on c1, whose reader waits elsewhere.
    for (unsigned workers : kWorkerCounts)
        for (Deliver d : {Deliver::Broadcast, Deliver::RoundRobin}) {
            CAPTURE(workers);
            CAPTURE(static_cast<int>(d));
            Harness h(workers);
            auto& c0 = h.channel("c0", 0);
            auto& c1 = h.channel("c1", 0);
            auto& never = h.channel("never", 0);
            auto& w = h.process("w", [&](ProcessContext& ctx) -> Task {
                co_await ctx.out().write(1);  // round robin: to c0
                co_await ctx.out().write(2);  // round robin: to c1
            });
            h.writes_routed(w, "out", {&c0, &c1}, d);
            auto& r0 = h.process("r0", [&](ProcessContext& ctx) -> Task {
                while (co_await ctx.in().read()) {
                }
            });
            auto& r1 = h.process(
                "r1", [&](ProcessContext& ctx) -> Task { co_await ctx.in("never").read(); });
            h.reads(r0, "in", c0);
            h.reads(r1, "in", c1);
            h.reads(r1, "never", never);
            const RunResult r = h.run();
            CHECK(r.status == RunStatus::Deadlock);
            CHECK(r.message ==
                  "deadlock: 'w' waits to write 'c1' (rendezvous, reader 'r1' waits to read "
                  "'never')\n"
                  "deadlock: 'r0' waits to read 'c0' (empty, writer 'w' waits to write 'c1')\n"
                  "deadlock: 'r1' waits to read 'never' (empty)");
        }
}

TEST_CASE("scheduler: a sleeping process is no deadlock, once it blocks for good it is") {
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 0);
        auto& never = h.channel("never", 0);
        std::int64_t got = -1;
        auto& a = h.process("a", [&](ProcessContext& ctx) -> Task {
            if (auto x = co_await ctx.in().read()) got = x->as_int();
            co_await ctx.in("never").read();
        });
        auto& b = h.process("b", [&](ProcessContext& ctx) -> Task {
            co_await sleep_for(30ms);  // everyone else is blocked meanwhile
            co_await ctx.out().write(5);
        });
        h.reads(a, "in", c);
        h.reads(a, "never", never);
        h.writes(b, "out", c);
        const RunResult r = h.run();
        CHECK(got == 5);
        CHECK(r.status == RunStatus::Deadlock);
        CHECK(r.message == "deadlock: 'a' waits to read 'never' (empty)");
    }
}

// ---- scheduling -------------------------------------------------------------------------

TEST_CASE("scheduler: a busy ping-pong pair does not starve other processes") {
    // A writer and a reader hand messages back and forth forever; a third process sleeps,
    // then poisons their channel. On one worker the pair always wakes each other: the
    // sleeper must still get its turn.
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        Harness h(workers);
        auto& c = h.channel("c", 0, 2, 1);
        std::int64_t exchanged = 0;
        auto& w = h.process("writer", [&](ProcessContext& ctx) -> Task {
            auto& out = ctx.out();
            for (int i = 0;; ++i) co_await out.write(i);
        });
        auto& r = h.process("reader", [&](ProcessContext& ctx) -> Task {
            auto& in = ctx.in();
            while (co_await in.read()) ++exchanged;
        });
        auto& stopper = h.process("stopper", [&](ProcessContext& ctx) -> Task {
            co_await sleep_for(20ms);
            ctx.out().poison();
        });
        h.writes(w, "out", c);
        h.writes(stopper, "out", c);
        h.reads(r, "in", c);
        check_ok(h.run());
        CHECK(exchanged > 0);
    }
}

namespace {
// Resident memory of this process, in bytes.
std::size_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}
}  // namespace

TEST_CASE("scheduler: 100 000 processes in a ring pass a token one full turn (scenario 19)") {
    constexpr int kProcesses = 100'000;
    for (unsigned workers : kWorkerCounts) {
        CAPTURE(workers);
        const std::size_t before = resident_bytes();
        std::size_t during = 0;
        std::int64_t token = -1;
        {
            Harness h(workers);
            std::vector<Channel*> ring;
            ring.reserve(kProcesses);
            for (int i = 0; i < kProcesses; ++i)
                ring.push_back(&h.channel("c" + std::to_string(i), 0));
            auto& head = h.process("p0", [&](ProcessContext& ctx) -> Task {
                co_await ctx.out().write(0);
                auto x = co_await ctx.in().read();
                token = x ? x->as_int() : -1;
                during = resident_bytes();  // every process exists; most have ended
            });
            h.writes(head, "out", *ring[0]);
            h.reads(head, "in", *ring[kProcesses - 1]);
            auto relay = [](ProcessContext& ctx) -> Task {
                auto x = co_await ctx.in().read();
                co_await ctx.out().write(x->as_int() + 1);
            };
            for (int i = 1; i < kProcesses; ++i) {
                auto& p = h.process("p" + std::to_string(i), relay);
                h.reads(p, "in", *ring[static_cast<std::size_t>(i) - 1]);
                h.writes(p, "out", *ring[static_cast<std::size_t>(i)]);
            }
            check_ok(h.run());
        }
        CHECK(token == kProcesses - 1);  // every relay added one
        // Memory stays bounded: a few KiB per process and channel (more under sanitizers).
        const std::size_t per_process = (during > before ? during - before : 0) / kProcesses;
        MESSAGE("resident growth per process: " << per_process << " bytes");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
        CHECK(per_process < 64 * 1024);
#else
        CHECK(per_process < 8 * 1024);
#endif
    }
}
