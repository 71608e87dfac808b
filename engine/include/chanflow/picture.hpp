// chanflow/picture.hpp — a checked graph drawn with GraphViz (docs/cli.md, `chanflow dot`).
//
//   chanflow::Plan plan = chanflow::load_plan("graphs/wordcount.yaml");
//   chanflow::draw(plan, "graph.svg");       // .dot, .svg or .png; "-" writes DOT to stdout
//
// Processes are boxes with their name and node type (a replicated one is a stacked box
// marked ×N); channels are edges labelled with name, kind, capacity (`rdv` for a
// rendezvous) and delivery policy when it is not `any`, with the ports named at the ends.
// A channel with more than two ends gets a small node of its own, so that fan-out and
// fan-in show. What the engine adds to a plan (ordered merges and their lanes) is not drawn.
//
// Given the statistics of a run (`chanflow run --stats=FILE`, `dot --stats-from FILE`), the
// picture shows where the time went: a process's fill by the share of the run it was busy,
// an edge's width by its message count, and in red the channels that were bottlenecks
// (full at their peak while their writers spent most of the run waiting for room).
//
// Given a placement (the processes and MPI backends), each partition is a cluster labelled
// `rank K` holding its processes; a replicated process split over partitions has a box in
// each (`split[0,2]`), and channels between partitions are dashed.
#pragma once

#include <string>

#include "chanflow/graph.hpp"
#include "chanflow/placement.hpp"
#include "chanflow/runtime.hpp"

namespace chanflow {

/// True when this build can draw (GraphViz's libraries were found when it was built).
bool can_draw() noexcept;

/// Draws a plan into `path`, in the format its extension names (.dot or .gv, .svg, .png);
/// "-" writes DOT to stdout. Throws std::runtime_error (unknown extension, no GraphViz in
/// this build, a file that cannot be written).
void draw(const Plan& plan, const std::string& path, const RunStats* stats = nullptr,
          const Placement* placement = nullptr);

/// The format a picture's file name asks for by its extension: "dot" (.dot, .gv), "svg" or
/// "png"; throws std::runtime_error for another.
std::string picture_format(const std::string& path);
/// The picture's bytes in `format` ("dot", "svg" or "png"); throws std::runtime_error (no
/// GraphViz in this build, an unknown format, a layout GraphViz could not make).
std::string render(const Plan& plan, const std::string& format, const RunStats* stats = nullptr,
                   const Placement* placement = nullptr);
/// The plan as DOT text (GraphViz's own writer), as `draw(plan, "-")` prints it.
std::string to_dot(const Plan& plan, const RunStats* stats = nullptr,
                   const Placement* placement = nullptr);

}  // namespace chanflow
