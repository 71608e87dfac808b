// What the engine keeps for one running process: its coroutine, ports and wait state.
#pragma once

#include <coroutine>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chanflow/graph.hpp"
#include "chanflow/process.hpp"
#include "scheduler.hpp"

namespace chanflow::detail {

class Channel;
class Runtime;

/// What a blocked process waits on, for the deadlock report.
enum class WaitKind : std::uint8_t { None, Read, Write, Alt, Sleep };

struct ProcessState {
    std::string name;   // "split[1]"
    std::string group;  // "split"
    int replica = 0;
    int replicas = 1;
    const NodeType* type = nullptr;
    const PlanProcess* plan = nullptr;  // null for processes built directly in tests
    NodeBody body;                      // used when type is null
    Runtime* runtime = nullptr;
    std::coroutine_handle<Task::promise_type> handle;
    bool own_thread = false;
    Scheduler::Dedicated* dedicated = nullptr;  // set for own_thread processes
    bool ended = false;

    std::vector<std::unique_ptr<InPort>> in_storage;
    std::vector<std::unique_ptr<OutPort>> out_storage;
    std::vector<std::pair<std::string, std::vector<InPort*>>> ins;
    std::vector<std::pair<std::string, std::vector<OutPort*>>> outs;
    ProcessContext context{this};

    // A multi-step operation (a broadcast write) continues here instead of resuming the
    // coroutine; it returns true when the operation is complete and the coroutine may go on.
    bool (*resume_hook)(void*) = nullptr;
    void* resume_hook_arg = nullptr;

    WaitKind wait = WaitKind::None;
    const Channel* wait_channel = nullptr;     // Read, Write
    std::vector<const Channel*> alt_channels;  // Alt
};

}  // namespace chanflow::detail
