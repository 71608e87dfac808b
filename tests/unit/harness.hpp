// A small harness for channel and scheduler tests: processes are lambdas (coroutines),
// channels are built directly, and the run goes through the real threads backend.
#pragma once

#include <string>

#include "chanflow/process.hpp"
#include "runtime_impl.hpp"

namespace chanflow::test {

class Harness {
public:
    explicit Harness(unsigned workers = 2) : rt_(RunOptions{.workers = workers}) {}

    detail::Channel& channel(const std::string& name, std::size_t capacity, int writers = 1,
                             int readers = 1) {
        return rt_.add_channel(name, capacity, writers, readers);
    }
    /// A process whose ports are bound afterwards with reads()/writes().
    detail::ProcessState& process(const std::string& name, NodeBody body) {
        return rt_.add_process(name, name, nullptr, std::move(body));
    }
    void reads(detail::ProcessState& p, const std::string& port, detail::Channel& c) {
        rt_.bind_in(p, port, c);
    }
    void writes(detail::ProcessState& p, const std::string& port, detail::Channel& c) {
        rt_.bind_out(p, port, c.name(), {&c}, Deliver::Any);
    }
    void writes_routed(detail::ProcessState& p, const std::string& port,
                       std::vector<detail::Channel*> targets, Deliver d) {
        // The name first: argument evaluation order is unspecified, and the move empties it.
        std::string name = targets.front()->name();
        rt_.bind_out(p, port, std::move(name), std::move(targets), d);
    }
    RunResult run() { return rt_.run(); }

private:
    detail::Runtime rt_;
};

}  // namespace chanflow::test
