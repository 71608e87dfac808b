// placement.cpp — which partition runs each process (chanflow/placement.hpp).
#include "chanflow/placement.hpp"

#include <stdexcept>
#include <string>

namespace chanflow {

Placement place(const Plan& plan, int partitions) {
    if (partitions < 1) throw std::invalid_argument("a run needs at least one partition");
    Placement out;
    out.partitions = partitions;
    out.of_process.reserve(plan.processes.size());
    std::vector<Diagnostic> errors;
    for (const PlanProcess& p : plan.processes) {
        int k = 0;
        if (p.rank) {
            k = *p.rank;
            if (k >= partitions) {
                // Every replica has the same pin: one error per process as written.
                if (p.replica == 0)
                    errors.push_back(
                        {p.rank_pos, "process '" + p.group + "' is pinned to rank " +
                                         std::to_string(k) + ", but the run has " +
                                         std::to_string(partitions) +
                                         (partitions == 1 ? " partition" : " partitions") +
                                         " (0.." + std::to_string(partitions - 1) + ")"});
                k = 0;
            }
        } else if (p.replicas > 1 && !p.hidden) {
            k = p.replica % partitions;
        }
        out.of_process.push_back(k);
    }
    if (!errors.empty()) throw GraphError(std::move(errors));
    return out;
}

std::vector<std::size_t> Placement::processes_of(int k) const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < of_process.size(); ++i)
        if (of_process[i] == k) out.push_back(i);
    return out;
}

bool Placement::crosses(const Plan& plan, std::size_t channel) const {
    const PlanChannel& c = plan.channels.at(channel);
    int first = -1;
    for (const auto* ends : {&c.writers, &c.readers})
        for (const EndRef& e : *ends) {
            const int k = of_process.at(e.process);
            if (first < 0)
                first = k;
            else if (k != first)
                return true;
        }
    return false;
}

}  // namespace chanflow
