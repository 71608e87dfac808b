// Graph files and checking (docs/graph-format.md, docs/cli.md): the loader, the checker and the
// Graph builder.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"

using namespace chanflow;

// Shows lists of diagnostics in failed checks, one per line.
template <>
struct doctest::StringMaker<std::vector<std::string>> {
    static String convert(const std::vector<std::string>& lines) {
        std::string out = "{";
        for (const auto& l : lines) out += "\n  \"" + l + "\"";
        return (out + "}").c_str();
    }
};

namespace {

// Test-only node types; the checker needs their declarations, never their bodies.
bool register_test_nodes() {
    auto& r = NodeRegistry::global();
    r.add({.name = "t.source",
           .doc = "emits start..stop",
           .params = {param("stop", ParamType::Int, "end"),
                      param("start", ParamType::Int, "first", 0),
                      param("label", ParamType::String, "a label", ""),
                      param("rate", ParamType::Float, "a rate", 1.0),
                      param("scale", ParamType::Number, "a number", 1),
                      param("verbose", ParamType::Bool, "a flag", false),
                      param("items", ParamType::List, "a list", List{}),
                      param("extra", ParamType::Any, "anything", Value())},
           .ports = {out_port("out")}});
    r.add({.name = "t.map",
           .doc = "emits expr(x)",
           .params = {param("expr", ParamType::Expr, "the expression"),
                      param("key", ParamType::Expr, "optional", Value())},
           .ports = {in_port("in"), out_port("out")}});
    r.add({.name = "t.sort",
           .doc = "sorts by an expression",
           .params = {param("by", ParamType::Expr, "sort key", "x")},
           .ports = {in_port("in"), out_port("out")}});
    r.add({.name = "t.sink", .doc = "consumes", .ports = {in_port("in")}});
    r.add({.name = "t.merge", .doc = "merges", .ports = {in_ports("in"), out_port("out")}});
    r.add({.name = "t.split", .doc = "copies", .ports = {in_port("in"), out_ports("out")}});
    PortSpec tap = out_port("tap");
    tap.required = false;
    r.add({.name = "t.tap", .doc = "optional output", .ports = {in_port("in"), tap}});
    return true;
}
const bool registered = register_test_nodes();

// Every diagnostic as "line:col: message", in the order reported.
std::vector<std::string> errors(std::string_view yaml, const Overrides& overrides = {}) {
    REQUIRE(registered);
    try {
        check_graph(parse_graph_spec(yaml, "g.yaml", overrides));
    } catch (const GraphError& e) {
        std::vector<std::string> out;
        for (const auto& d : e.diagnostics())
            out.push_back(std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column) + ": " +
                          d.message);
        return out;
    }
    return {};
}

using Lines = std::vector<std::string>;

Plan plan_of(std::string_view yaml, const Overrides& overrides = {}) {
    REQUIRE(registered);
    return check_graph(parse_graph_spec(yaml, "g.yaml", overrides));
}

const PlanChannel& channel(const Plan& p, const std::string& name) {
    for (const auto& c : p.channels)
        if (c.name == name) return c;
    FAIL("no channel " << name);
    throw 0;
}

const PlanProcess& process(const Plan& p, const std::string& name) {
    for (const auto& pr : p.processes)
        if (pr.name == name) return pr;
    FAIL("no process " << name);
    throw 0;
}

// A temporary graph file, removed at the end of the test.
struct TempFile {
    std::filesystem::path path;
    explicit TempFile(const std::string& text, const std::string& name = "graph_test.yaml") {
        path = std::filesystem::temp_directory_path() / ("chanflow_" + std::to_string(::getpid()));
        std::filesystem::create_directories(path);
        path /= name;
        std::ofstream(path) << text;
    }
    ~TempFile() { std::filesystem::remove_all(path.parent_path()); }
};

const char* const kPipeline = R"Y(chanflow: 1
processes:
  src:
    node: t.source
    with: {stop: 10}
    out: {out: nums}
  sq:
    node: t.map
    with: {expr: "x * x"}
    in: {in: nums}
    out: {out: squares}
  sink:
    node: t.sink
    in: {in: squares}
)Y";

}  // namespace

// ---- valid graphs --------------------------------------------------------------------------

TEST_CASE("graph: a valid file becomes a plan") {
    const Plan p = plan_of(kPipeline);
    CHECK(p.name == "g");
    CHECK(p.file == "g.yaml");
    CHECK(p.backend == "threads");
    REQUIRE(p.processes.size() == 3);
    REQUIRE(p.channels.size() == 2);

    const PlanProcess& src = process(p, "src");
    CHECK(src.group == "src");
    CHECK(src.replicas == 1);
    CHECK(src.type == NodeRegistry::global().find("t.source"));
    CHECK(src.params.at("stop") == Value(10));
    CHECK(src.params.at("start") == Value(0));  // defaults filled in
    CHECK(src.params.at("rate").is_float());    // a Float default given as 1.0
    CHECK(src.pos.line == 3);
    CHECK(src.pos.column == 3);
    REQUIRE(src.outputs.size() == 1);
    CHECK(src.outputs[0].port == "out");

    const PlanProcess& sq = process(p, "sq");
    REQUIRE(sq.exprs.count("expr") == 1);
    CHECK(sq.exprs.at("expr").source() == "x * x");
    CHECK(sq.exprs.count("key") == 0);  // optional, not given
    CHECK(sq.params.at("key").is_null());

    const PlanChannel& nums = channel(p, "nums");
    CHECK(nums.kind == ChannelKind::One2One);
    CHECK(nums.capacity == 64);
    CHECK(nums.deliver == Deliver::Any);
    REQUIRE(nums.writers.size() == 1);
    REQUIRE(nums.readers.size() == 1);
    CHECK(p.processes[nums.writers[0].process].name == "src");
    CHECK(nums.writers[0].port == "out");
    CHECK(p.processes[nums.readers[0].process].name == "sq");
    CHECK(nums.readers[0].port == "in");
    CHECK(p.channels[src.outputs[0].channels[0]].name == "nums");
}

TEST_CASE("graph: name, description and expression defaults") {
    const Plan p = plan_of(R"Y(chanflow: 1
name: squares
description: squares of numbers
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  s: {node: t.sort, in: {in: a}, out: {out: b}}
  sink: {node: t.sink, in: {in: b}}
)Y");
    CHECK(p.name == "squares");
    CHECK(process(p, "s").exprs.at("by").source() == "x");
    CHECK(process(p, "s").params.at("by") == Value("x"));
}

TEST_CASE("graph: parameter types are checked and Float takes an int") {
    const Plan p = plan_of(R"Y(chanflow: 1
processes:
  src:
    node: t.source
    with: {stop: 5, rate: 2, scale: 2, verbose: true, items: [1, 2], extra: {a: 1}}
    out: {out: c}
  sink: {node: t.sink, in: {in: c}}
)Y");
    const PlanProcess& src = process(p, "src");
    CHECK(src.params.at("rate").is_float());
    CHECK(src.params.at("rate").as_float() == 2.0);
    CHECK(src.params.at("scale").is_int());  // Number keeps an int
    CHECK(src.params.at("verbose") == Value(true));
    CHECK(src.params.at("items") == Value::list({1, 2}));
    CHECK(src.params.at("extra").is_record());
}

TEST_CASE("graph: YAML 1.2 core schema for plain scalars") {
    const GraphSpec s = parse_graph_spec(R"Y(chanflow: 1
params:
  a: on
  b: yes
  c: no
  d: True
  e: FALSE
  f: 0x1F
  g: 0o17
  h: -42
  i: 1e3
  j: .inf
  k: -.inf
  l: .nan
  m: ~
  n:
  o: "1"
  p: '5'
  q: 1.5
  r: null
  s: +7
  t: .5
  u: 0x
  v: 12abc
  w: !!str 3
  x: [1, "a", {k: true}]
)Y",
                                         "g.yaml");
    const auto& ps = s.params;
    CHECK(ps.at("a") == Value("on"));
    CHECK(ps.at("b") == Value("yes"));
    CHECK(ps.at("c") == Value("no"));
    CHECK(ps.at("d") == Value(true));
    CHECK(ps.at("e") == Value(false));
    CHECK(ps.at("f") == Value(31));
    CHECK(ps.at("g") == Value(15));
    CHECK(ps.at("h") == Value(-42));
    CHECK(ps.at("i").is_float());
    CHECK(ps.at("i").as_float() == 1000.0);
    CHECK(ps.at("j").as_float() == INFINITY);
    CHECK(ps.at("k").as_float() == -INFINITY);
    CHECK(std::isnan(ps.at("l").as_float()));
    CHECK(ps.at("m").is_null());
    CHECK(ps.at("n").is_null());
    CHECK(ps.at("o") == Value("1"));
    CHECK(ps.at("p") == Value("5"));
    CHECK(ps.at("q") == Value(1.5));
    CHECK(ps.at("r").is_null());
    CHECK(ps.at("s") == Value(7));
    CHECK(ps.at("t") == Value(0.5));
    CHECK(ps.at("u") == Value("0x"));
    CHECK(ps.at("v") == Value("12abc"));
    CHECK(ps.at("w") == Value("3"));
    CHECK(ps.at("x") == Value(List{1, "a", Record{{"k", true}}}));

    CHECK(errors("chanflow: 1\nparams: {big: 9223372036854775808}\n") ==
          Lines{"2:15: integer 9223372036854775808 is out of range"});
    CHECK(parse_graph_spec("chanflow: 1\nparams: {m: -9223372036854775808}\n", "g.yaml")
              .params.at("m")
              .as_int() == INT64_MIN);
}

// ---- every diagnostic, with its message and place ------------------------------------------

TEST_CASE("graph: unknown node type, at the value of node") {
    CHECK(errors(R"Y(chanflow: 1
processes:
  src:
    node: t.sorce
)Y") == Lines{"4:11: unknown node type 't.sorce' (did you mean 't.source'?)"});
    CHECK(errors("chanflow: 1\nprocesses:\n  src: {node: zzzzzz}\n") ==
          Lines{"3:15: unknown node type 'zzzzzz'"});
}

TEST_CASE("graph: unknown keys, with a suggestion") {
    CHECK(errors("chanflow: 1\nchanels:\n  a: {}\n") ==
          Lines{"2:1: unknown key 'chanels' (did you mean 'channels'?)"});
    CHECK(errors(R"Y(chanflow: 1
channels:
  c: {capacty: 4}
processes:
  src: {node: t.source, with: {stop: 1}, out: {out: c}, replica: 2}
  sink: {node: t.sink, in: {in: {channel: c, delivr: hash}}}
)Y") == Lines{"3:7: unknown key 'capacty' (did you mean 'capacity'?)",
              "5:57: unknown key 'replica' (did you mean 'replicas'?)",
              "6:46: unknown key 'delivr' (did you mean 'deliver'?)"});
    CHECK(errors("chanflow: 1\nzzz: 1\n") == Lines{"2:1: unknown key 'zzz'"});
    CHECK(errors("chanflow: 1\ndefaults: {capacity: 1, backnd: mpi}\n") ==
          Lines{"2:25: unknown key 'backnd' (did you mean 'backend'?)"});
}

TEST_CASE("graph: duplicate keys") {
    CHECK(errors("chanflow: 1\nparams: {a: 1, a: 2}\n") == Lines{"2:16: duplicate key 'a'"});
}

TEST_CASE("graph: unknown, missing and ill-typed parameters") {
    CHECK(errors(R"Y(chanflow: 1
processes:
  src:
    node: t.source
    with: {stpo: 3}
    out: {out: c}
  sink: {node: t.sink, in: {in: c}}
)Y") == Lines{"3:3: missing parameter 'stop' for node 't.source'",
              "5:12: unknown parameter 'stpo' for node 't.source' (did you mean 'stop'?)"});
    CHECK(errors(R"Y(chanflow: 1
processes:
  src:
    node: t.source
    with: {stop: "ten", verbose: yes, items: 3, rate: x, zzz: 1}
    out: {out: c}
  sink: {node: t.sink, in: {in: c}}
)Y") == Lines{"5:18: parameter 'stop' of node 't.source' must be int, got str",
              "5:34: parameter 'verbose' of node 't.source' must be bool, got str",
              "5:46: parameter 'items' of node 't.source' must be list, got int",
              "5:55: parameter 'rate' of node 't.source' must be float, got str",
              "5:58: unknown parameter 'zzz' for node 't.source'"});
    CHECK(errors(R"Y(chanflow: 1
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: c}}
  m: {node: t.map, with: {expr: 3}, in: {in: c}, out: {out: d}}
  sink: {node: t.sink, in: {in: d}}
)Y") == Lines{"4:33: parameter 'expr' of node 't.map' must be str (an expression), got int"});
}

TEST_CASE("graph: ports: unknown, wrong section, list for one channel, unbound") {
    CHECK(errors(R"Y(chanflow: 1
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  sq:
    node: t.map
    with: {expr: x}
    in: {inn: a}
    out: {out: b}
  sink: {node: t.sink, in: {in: b}}
)Y") == Lines{"4:3: port 'in' of process 'sq' is not bound",
              "7:10: unknown port 'inn' of node 't.map' (did you mean 'in'?)"});
    CHECK(errors(R"Y(chanflow: 1
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  sq:
    node: t.map
    with: {expr: x}
    in: {in: [a, b]}
  sink: {node: t.tap, in: {tap: a}}
)Y") == Lines{"4:3: port 'out' of process 'sq' is not bound",
              "7:10: port 'in' of node 't.map' takes one channel, got a list",
              "7:18: channel 'b' has no writer", "8:3: port 'in' of process 'sink' is not bound",
              "8:28: unknown port 'tap' of node 't.tap' (it is an output port)"});
    // An optional port may stay unbound; a list port takes a single name too.
    CHECK(errors(R"Y(chanflow: 1
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  tap: {node: t.tap, in: {in: a}}
  src2: {node: t.source, with: {stop: 3}, out: {out: b}}
  m: {node: t.merge, in: {in: b}, out: {out: c}}
  sink: {node: t.sink, in: {in: c}}
)Y")
              .empty());
}

TEST_CASE("graph: unknown ${param}") {
    CHECK(errors(R"Y(chanflow: 1
params: {name: x}
processes:
  src:
    node: t.source
    with: {stop: 1, label: "a ${nme}"}
    out: {out: c}
  sink: {node: t.sink, in: {in: c}}
)Y") == Lines{"6:28: unknown parameter '${nme}' (did you mean 'name'?)"});
    CHECK(errors("chanflow: 1\nchannels:\n  c: {capacity: \"${zzz}\"}\n") ==
          Lines{"3:17: unknown parameter '${zzz}'"});
    CHECK(errors("chanflow: 1\nparams: {a: 1}\nname: \"${a\"\n") ==
          Lines{"3:7: unterminated '${' in '${a'"});
}

TEST_CASE("graph: expression syntax errors point at the character") {
    // Column of the value, past the opening quote, plus the expression's offset.
    const auto quoted = errors(R"Y(chanflow: 1
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  sq: {node: t.map, with: {expr: "x + * 2"}, in: {in: a}, out: {out: b}}
  sink: {node: t.sink, in: {in: b}}
)Y");
    REQUIRE(quoted.size() == 1);
    CHECK(quoted[0].rfind("4:39: syntax error in expression: ", 0) == 0);
    CHECK(quoted[0].find("'*'") != std::string::npos);

    const auto plain = errors(R"Y(chanflow: 1
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  sq:
    node: t.map
    with:
      expr: x + * 2
    in: {in: a}
    out: {out: b}
  sink: {node: t.sink, in: {in: b}}
)Y");
    REQUIRE(plain.size() == 1);
    CHECK(plain[0].rfind("7:17: syntax error in expression: ", 0) == 0);
}

TEST_CASE("graph: channel kinds against their ends") {
    CHECK(errors(R"Y(chanflow: 1
channels:
  c: {kind: one2one}
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: c}}
  sink: {node: t.sink, replicas: 2, in: {in: c}}
)Y") == Lines{"3:13: channel 'c' is declared one2one but has 1 writer and 2 readers "
              "(one2any)"});
    CHECK(errors(R"Y(chanflow: 1
channels:
  c: {kind: any2any}
processes:
  src: {node: t.source, replicas: 3, with: {stop: 3}, out: {out: c}}
  sink: {node: t.sink, in: {in: c}}
)Y") == Lines{"3:13: channel 'c' is declared any2any but has 3 writers and 1 reader "
              "(any2one)"});
    CHECK(errors("chanflow: 1\nchannels:\n  c: {kind: one2many}\n")[0] ==
          "3:13: unknown channel kind 'one2many' (did you mean 'one2any'?)");
}

TEST_CASE("graph: channels without a writer or a reader") {
    // Undeclared: at the binding that names it; declared: at the declaration.
    CHECK(errors(R"Y(chanflow: 1
channels:
  d: {}
  e: {capacity: 1}
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  sink: {node: t.sink, in: {in: b}}
  sink2: {node: t.sink, in: {in: d}}
)Y") == Lines{"3:3: channel 'd' has no writer", "4:3: channel 'e' has no writer and no reader",
              "6:53: channel 'a' has no reader", "7:33: channel 'b' has no writer"});
}

TEST_CASE("graph: replicas must be an int >= 1") {
    CHECK(errors(R"Y(chanflow: 1
processes:
  src: {node: t.source, replicas: 0, with: {stop: 3}, out: {out: a}}
  sink: {node: t.sink, replicas: two, in: {in: a}}
)Y") == Lines{"3:35: replicas must be an int >= 1, got 0",
              "4:34: replicas must be an int >= 1, got 'two'"});
}

TEST_CASE("graph: deliver policies") {
    const Plan p = plan_of(R"Y(chanflow: 1
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  split: {node: t.split, in: {in: a}, out: {out: [b, c, d, e]}}
  r1: {node: t.sink, replicas: 2, in: {in: {channel: b, deliver: round_robin}}}
  r2: {node: t.sink, replicas: 2, in: {in: {channel: c, deliver: hash}}}
  r3: {node: t.sink, replicas: 2, in: {in: {channel: d, deliver: broadcast}}}
  r4: {node: t.sink, in: {in: {channel: e}}}
  r5: {node: t.sink, in: {in: {channel: e, deliver: any}}}
)Y");
    CHECK(channel(p, "a").deliver == Deliver::Any);
    CHECK(channel(p, "b").deliver == Deliver::RoundRobin);
    CHECK(channel(p, "c").deliver == Deliver::Hash);
    CHECK(channel(p, "d").deliver == Deliver::Broadcast);
    CHECK(channel(p, "e").deliver == Deliver::Any);
    CHECK(channel(p, "e").kind == ChannelKind::One2Any);
}

TEST_CASE("graph: deliver problems") {
    CHECK(errors(R"Y(chanflow: 1
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: {channel: c, deliver: hash}}}
  a: {node: t.sink, in: {in: {channel: c, deliver: hash}}}
  b: {node: t.sink, in: {in: {channel: c, deliver: broadcast}}}
  c: {node: t.sink, in: {in: {channel: c, deliver: hash}}}
)Y") == Lines{"3:75: 'deliver' belongs on a reading binding (under 'in'), not on output port "
              "'out'",
              "5:52: conflicting deliver policies for channel 'c': hash and broadcast"});
    CHECK(errors(R"Y(chanflow: 1
processes:
  d: {node: t.sink, in: {in: {channel: c, deliver: rr}}}
  e: {node: t.sink, in: {in: {channel: c, deliver: hsah}}}
  f: {node: t.sink, in: {in: {deliver: any}}}
)Y") == Lines{"3:52: unknown deliver policy 'rr' (expected any, round_robin, hash or broadcast)",
              "4:52: unknown deliver policy 'hsah' (did you mean 'hash'?)",
              "5:30: missing key 'channel' in the binding of port 'in'"});
}

TEST_CASE("graph: capacity and backend") {
    CHECK(errors(R"Y(chanflow: 1
defaults: {capacity: -1, backend: thread}
channels:
  c: {capacity: 1.5}
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: c}}
  sink: {node: t.sink, in: {in: c}}
)Y") == Lines{"2:22: capacity must be an int >= 0, got -1",
              "2:35: unknown backend 'thread' (did you mean 'threads'?)",
              "4:17: capacity must be an int >= 0, got 1.5"});
    CHECK(errors("chanflow: 1\ndefaults: {backend: gpu}\n") ==
          Lines{"2:21: unknown backend 'gpu' (expected threads, processes or mpi)"});
    CHECK(plan_of("chanflow: 1\ndefaults: {backend: mpi}\n").backend == "mpi");
}

TEST_CASE("graph: defaults.capacity") {
    const char* body = R"Y(
channels:
  a: {capacity: 0}
  b: {kind: one2one}
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: a}}
  m: {node: t.map, with: {expr: x}, in: {in: a}, out: {out: b}}
  m2: {node: t.map, with: {expr: x}, in: {in: b}, out: {out: c}}
  sink: {node: t.sink, in: {in: c}}
)Y";
    const Plan with = plan_of(std::string("chanflow: 1\ndefaults: {capacity: 8}") + body);
    CHECK(channel(with, "a").capacity == 0);
    CHECK(channel(with, "b").capacity == 8);
    CHECK(channel(with, "c").capacity == 8);
    const Plan without = plan_of(std::string("chanflow: 1") + body);
    CHECK(channel(without, "b").capacity == 64);
    CHECK(channel(without, "c").capacity == 64);
}

TEST_CASE("graph: format version") {
    CHECK(errors("chanflow: 2\n") == Lines{"1:11: unknown graph format version 2 (expected 1)"});
    CHECK(errors("chanflow: one\n") ==
          Lines{"1:11: unknown graph format version 'one' (expected 1)"});
    CHECK(errors("name: x\n") == Lines{"1:1: missing key 'chanflow' (the format version, 1)"});
    CHECK(errors("") == Lines{"1:1: missing key 'chanflow' (the format version, 1)"});
}

TEST_CASE("graph: YAML syntax errors") {
    const auto e = errors("chanflow: 1\nprocesses: [a, b\nname: x\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].find(": YAML syntax error: ") != std::string::npos);
    CHECK(e[0].rfind("3:", 0) == 0);
    // A plain ${...} inside { } is a YAML error; the message says how to write it.
    const auto f = errors("chanflow: 1\nparams: {n: 1}\nprocesses:\n  a: {replicas: ${n}}\n");
    REQUIRE(f.size() == 1);
    CHECK(f[0].find("write \"${name}\" in quotes") != std::string::npos);
    CHECK(errors("- a\n- b\n") ==
          Lines{"1:1: a graph file must be a mapping (chanflow, params, channels, processes)"});
}

TEST_CASE("graph: names must be names") {
    CHECK(errors("chanflow: 1\nparams: {9x: 1}\n") ==
          Lines{"2:10: invalid parameter name '9x' (names match [A-Za-z_][A-Za-z0-9_.-]*)"});
    CHECK(errors(R"Y(chanflow: 1
processes:
  1src: {node: t.source, with: {stop: 3}, out: {out: "a b"}}
  ok.name-2: {node: t.sink, in: {in: _c.d-e}}
  w: {node: t.source, with: {stop: 3}, out: {out: _c.d-e}}
)Y") == Lines{"3:3: invalid process name '1src' (names match [A-Za-z_][A-Za-z0-9_.-]*)",
              "3:54: invalid channel name 'a b' (names match [A-Za-z_][A-Za-z0-9_.-]*)"});
}

TEST_CASE("graph: several problems are all reported, in file order") {
    const auto e = errors(R"Y(chanflow: 1
channels:
  c: {kind: any2one}
processes:
  src: {node: t.source, with: {stop: x}, out: {out: c}}
  sq: {node: t.mapp, in: {in: c}}
  sink: {node: t.sink, in: {inn: c}}
)Y");
    CHECK(e == Lines{"3:13: channel 'c' is declared any2one but has 1 writer and 2 readers "
                     "(one2any)",
                     "5:38: parameter 'stop' of node 't.source' must be int, got str",
                     "6:14: unknown node type 't.mapp' (did you mean 't.map'?)",
                     "7:3: port 'in' of process 'sink' is not bound",
                     "7:29: unknown port 'inn' of node 't.sink' (did you mean 'in'?)"});
}

// ---- parameters: ${...} and --set ------------------------------------------------------------

TEST_CASE("graph: ${param} substitution keeps or prints the type") {
    const char* yaml = R"Y(chanflow: 1
params:
  n: 3
  rate: 2.5
  word: hi
  items: [1, 2]
processes:
  src:
    node: t.source
    replicas: ${n}
    with:
      stop: ${n}
      start: "${n}"
      label: "${word}-${n}-${rate} $${n}"
      rate: ${rate}
      items: ${items}
      extra:
        - ${n}
        - "${items}"
    out: {out: c}
  sink: {node: t.sink, in: {in: c}}
)Y";
    const Plan p = plan_of(yaml);
    CHECK(p.processes.size() == 4);
    const PlanProcess& src = process(p, "src[2]");
    CHECK(src.params.at("stop") == Value(3));
    CHECK(src.params.at("start") == Value(3));
    CHECK(src.params.at("label") == Value("hi-3-2.5 ${n}"));
    CHECK(src.params.at("rate") == Value(2.5));
    CHECK(src.params.at("items") == Value::list({1, 2}));
    CHECK(src.params.at("extra") == Value::list({3, Value::list({1, 2})}));
}

TEST_CASE("graph: what YAML can make the loader do is bounded") {
    const std::string tail =
        "processes:\n  src: {node: t.source, with: {stop: 1}, out: {out: c}}\n"
        "  sink: {node: t.sink, in: {in: c}}\n";
    // Nested aliases: nine of nine of ... expand past a million values, at the alias that
    // takes them there.
    std::string bomb = "chanflow: 1\nparams:\n  a: &a [1,1,1,1,1,1,1,1,1]\n";
    for (char c = 'b'; c <= 'h'; ++c) {
        std::string item = std::string("*") + static_cast<char>(c - 1);
        bomb += std::string("  ") + c + ": &" + c + " [" + item;
        for (int i = 1; i < 9; ++i) bomb += "," + item;
        bomb += "]\n";
    }
    CHECK(errors(bomb + tail) ==
          Lines{"9:10: alias '*f' takes what aliases repeat past 1000000 values"});
    // Within the bound, aliases work as copies.
    const Plan shared = plan_of(
        "chanflow: 1\nparams:\n  a: &a [1, 2]\n  b: [*a, *a]\n"
        "processes:\n  src: {node: t.source, with: {stop: 1, items: *a}, out: {out: c}}\n"
        "  sink: {node: t.sink, in: {in: c}}\n");
    CHECK(process(shared, "src").params.at("items") == Value(List{Value(1), Value(2)}));
    // A collection that holds an alias of itself cannot be expanded at all.
    CHECK(errors("chanflow: 1\nparams:\n  a: &a [1, *a]\n" + tail) ==
          Lines{"3:13: alias '*a' takes what aliases repeat past 1000000 values"});

    // Values nest at most 64 deep; the parser itself stops far deeper nesting.
    auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
    CHECK(errors("chanflow: 1\nparams:\n  x: " + nested(64) + "\n" + tail).empty());
    CHECK(errors("chanflow: 1\nparams:\n  x: " + nested(65) + "\n" + tail) ==
          Lines{"3:6: a list or record nested deeper than 64 levels"});
    const auto deep = errors("chanflow: 1\nparams:\n  x: " + nested(20000) + "\n" + tail);
    REQUIRE(deep.size() == 1);
    CHECK(deep[0].find(": lists and mappings nested too deeply") != std::string::npos);
    CHECK(deep[0].rfind("3:", 0) == 0);

    // One document: a second one is not dropped without a word.
    CHECK(errors("chanflow: 1\n" + tail + "---\nname: x\n") ==
          Lines{"5:1: a second YAML document ('---'): only one is read"});
    CHECK(errors("%YAML 1.2\n---\nchanflow: 1\n" + tail + "...\n# the end\n").empty());
    CHECK(errors("chanflow: 1\n" + tail + "...\nname: x\n") ==
          Lines{"6:1: a second YAML document ('---'): only one is read"});
    // Malformed text on which a loop over documents would never end.
    CHECK(errors(",") == Lines{"1:1: missing key 'chanflow' (the format version, 1)"});
    CHECK(errors("chanflow: 1\nparams: {n: 1}\n" + tail, {{"n", "2\n---\n3"}}) ==
          Lines{"0:0: --set: cannot read the value of 'n': a second YAML document ('---'): "
                "only one is read"});
}

TEST_CASE("graph: --set overrides declared parameters") {
    const char* yaml = R"Y(chanflow: 1
params: {n: 3, path: data.txt}
processes:
  src:
    node: t.source
    with:
      stop: ${n}
      label: ${path}
    out: {out: c}
  sink: {node: t.sink, in: {in: c}}
)Y";
    const Plan p = plan_of(yaml, {{"n", "5"}, {"path", "other.txt"}});
    CHECK(process(p, "src").params.at("stop") == Value(5));
    CHECK(process(p, "src").params.at("label") == Value("other.txt"));

    // A quoted value is a string, which `stop` does not take.
    CHECK(errors(yaml, {{"n", "'5'"}}) ==
          Lines{"7:13: parameter 'stop' of node 't.source' must be int, got str"});

    try {
        parse_graph_spec(yaml, "g.yaml", {{"x", "1"}, {"pth", "a"}});
        FAIL("expected a GraphError");
    } catch (const GraphError& e) {
        REQUIRE(e.diagnostics().size() == 2);
        CHECK(e.diagnostics()[0].str() ==
              "error: --set: unknown parameter 'x' (did you mean 'n'?)");
        CHECK(e.diagnostics()[1].str() ==
              "error: --set: unknown parameter 'pth' (did you mean 'path'?)");
        CHECK(std::string(e.what()) ==
              "error: --set: unknown parameter 'x' (did you mean 'n'?)\n"
              "error: --set: unknown parameter 'pth' (did you mean 'path'?)");
    }
    CHECK(errors(yaml, {{"zzzz", "1"}}) == Lines{"0:0: --set: unknown parameter 'zzzz'"});
    const GraphSpec s = parse_graph_spec(yaml, "g.yaml", {{"n", "1.5"}, {"path", "true"}});
    CHECK(s.params.at("n") == Value(1.5));
    CHECK(s.params.at("path") == Value(true));
    CHECK(parse_graph_spec(yaml, "g.yaml", {{"path", "on"}}).params.at("path") == Value("on"));
    CHECK(parse_graph_spec(yaml, "g.yaml", {{"path", ""}}).params.at("path").is_null());
}

// ---- replicas and kinds --------------------------------------------------------------------

TEST_CASE("graph: replicas expand and kinds follow from the ends") {
    const Plan p = plan_of(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c1}}
  b: {node: t.sink, replicas: 1, in: {in: c1}}
  c: {node: t.source, with: {stop: 1}, out: {out: c2}}
  d: {node: t.sink, replicas: 3, in: {in: c2}}
  e: {node: t.source, replicas: 2, with: {stop: 1}, out: {out: c3}}
  f: {node: t.sink, in: {in: c3}}
  g: {node: t.source, replicas: 2, with: {stop: 1}, out: {out: c4}}
  h: {node: t.sink, replicas: 2, in: {in: c4}}
)Y");
    CHECK(p.processes.size() == 1 + 1 + 1 + 3 + 2 + 1 + 2 + 2);
    CHECK(channel(p, "c1").kind == ChannelKind::One2One);
    CHECK(channel(p, "c2").kind == ChannelKind::One2Any);
    CHECK(channel(p, "c3").kind == ChannelKind::Any2One);
    CHECK(channel(p, "c4").kind == ChannelKind::Any2Any);
    CHECK(channel(p, "c2").readers.size() == 3);
    CHECK(channel(p, "c4").writers.size() == 2);
    CHECK(channel(p, "c4").readers.size() == 2);

    const PlanProcess& b = process(p, "b");  // `replicas: 1` keeps the plain name
    CHECK(b.replicas == 1);
    CHECK(b.replica == 0);
    for (int i = 0; i < 3; ++i) {
        const PlanProcess& d = process(p, "d[" + std::to_string(i) + "]");
        CHECK(d.group == "d");
        CHECK(d.replica == i);
        CHECK(d.replicas == 3);
        CHECK(p.processes[channel(p, "c2").readers[static_cast<std::size_t>(i)].process].name ==
              d.name);
    }
}

TEST_CASE("graph: process options") {
    const Plan p = plan_of(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c}, rank: 1, on: cpu}
  b: {node: t.sink, ordered: true, in: {in: c}}
)Y");
    CHECK(process(p, "a").rank == 1);
    CHECK(!process(p, "a").gpu);
    CHECK(process(p, "b").ordered);
    // A node type without a GPU version cannot go there; `gpu:` belongs to `on: gpu`.
    CHECK(errors(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c}, on: gpu}
  b: {node: t.sink, gpu: prefer, in: {in: c}}
)Y") == Lines{"3:59: node type 't.source' has no GPU version (these have one: filter, gpu.kernel, "
              "map, pi.sample, random.uniform, reduce)",
              "4:26: 'gpu' says what a process placed on a GPU does where none can be used, "
              "but process 'b' has no 'on: gpu'"});
    CHECK(errors(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c}, device: 1}
  b: {node: t.sink, in: {in: c}}
)Y") == Lines{"3:63: 'device' picks the GPU of a process placed on one, but process 'a' has "
              "no 'on: gpu'"});
    CHECK(errors(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c}}
  b: {node: t.sink, device: -1, in: {in: c}}
)Y") == Lines{"4:29: device must be an int from 0 to 1023, got -1"});
    CHECK(errors("chanflow: 1\ngpu: maybe\nprocesses:\n"
                 "  a: {node: t.source, with: {stop: 1}, out: {out: c}, gpu: always}\n"
                 "  b: {node: t.sink, in: {in: c}}\n") ==
          Lines{"2:6: unknown gpu mode 'maybe' (expected require or prefer)",
                "4:60: unknown gpu mode 'always' (expected require or prefer)"});
    CHECK(!process(p, "a").ordered);
    CHECK(errors(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c}, rank: -1, on: tpu}
  b: {node: t.sink, ordered: 1, in: {in: c}}
)Y") == Lines{"3:61: rank must be an int >= 0, got -1",
              "3:69: unknown placement 'tpu' (did you mean 'cpu'?)",
              "4:30: ordered must be true or false, got 1"});
}

TEST_CASE("graph: ordered fan-out") {
    // The replicas read round-robin and write lanes of their own; a merge writes the channel.
    const Plan p = plan_of(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c}}
  m: {node: t.map, replicas: 2, ordered: true, with: {expr: x}, in: {in: c}, out: {out: d}}
  b: {node: t.sink, in: {in: d}}
)Y");
    CHECK(channel(p, "c").deliver == Deliver::RoundRobin);
    const PlanProcess& merge = process(p, "m[ordered d]");
    CHECK(merge.hidden);
    CHECK(!channel(p, "d").hidden);
    CHECK(channel(p, "m[0]>d").hidden);
    CHECK(merge.type->name == "ordered-merge");
    REQUIRE(merge.inputs.size() == 1);
    REQUIRE(merge.inputs[0].channels.size() == 2);
    for (int r = 0; r < 2; ++r) {
        const std::string replica = "m[" + std::to_string(r) + "]";
        const PlanChannel& lane = channel(p, replica + ">d");
        CHECK(&lane == &p.channels[merge.inputs[0].channels[static_cast<std::size_t>(r)]]);
        CHECK(p.channels[process(p, replica).outputs[0].channels[0]].name == lane.name);
        REQUIRE(lane.writers.size() == 1);
        CHECK(p.processes[lane.writers[0].process].name == replica);
        CHECK(lane.capacity == 64);
    }
    REQUIRE(channel(p, "d").writers.size() == 1);
    CHECK(p.processes[channel(p, "d").writers[0].process].name == "m[ordered d]");
    CHECK(channel(p, "d").kind == ChannelKind::Any2One);  // as written: replicas count

    // Ordered fan-outs in a row: the first one's merge is the second one's only writer.
    CHECK(errors(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c}}
  m: {node: t.map, replicas: 2, ordered: true, with: {expr: x}, in: {in: c}, out: {out: d}}
  n: {node: t.map, replicas: 3, ordered: true, with: {expr: x}, in: {in: d}, out: {out: e}}
  b: {node: t.sink, in: {in: e}}
)Y")
              .empty());

    // Without one input order there is nothing to keep.
    CHECK(errors(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, replicas: 2, out: {out: c}}
  m: {node: t.map, replicas: 2, ordered: true, with: {expr: x}, in: {in: {channel: c, deliver: hash}}, out: {out: d}}
  n: {node: t.map, replicas: 2, ordered: true, with: {expr: x}, in: {in: c2}, out: {out: d}}
  o: {node: t.merge, replicas: 2, ordered: true, in: {in: [d, e]}, out: {out: f}}
  b: {node: t.sink, in: {in: f}}
  s: {node: t.source, with: {stop: 1}, out: {out: c2}}
  s2: {node: t.source, with: {stop: 1}, out: {out: e}}
)Y") == Lines{"4:96: 'ordered: true' on process 'm' needs deliver any or round_robin on "
              "channel 'c', not hash",
              "6:3: 'ordered: true' needs exactly one input channel, process 'o' has 2"});
    CHECK(errors(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, replicas: 2, out: {out: c}}
  m: {node: t.map, replicas: 2, ordered: true, with: {expr: x}, in: {in: c}, out: {out: d}}
  b: {node: t.sink, in: {in: d}}
)Y") == Lines{"4:3: 'ordered: true' on process 'm' needs one writer on channel 'c', it has "
              "2 writers (their interleaving leaves the input order open)"});
    // One replica: nothing to merge, the plan is as written.
    const Plan one = plan_of(R"Y(chanflow: 1
processes:
  a: {node: t.source, with: {stop: 1}, out: {out: c}}
  m: {node: t.map, ordered: true, with: {expr: x}, in: {in: c}, out: {out: d}}
  b: {node: t.sink, in: {in: d}}
)Y");
    CHECK(one.processes.size() == 3);
    CHECK(channel(one, "c").deliver == Deliver::Any);
}

// ---- the builder ---------------------------------------------------------------------------

TEST_CASE("graph: the Graph builder") {
    REQUIRE(registered);
    Graph g("squares");
    g.process("src", "t.source").with("stop", 10).with("rate", 3).out("out", "nums");
    g.process("sq", "t.map").with("expr", "x * x").replicas(2).in("in", "nums").out("out", "sq");
    g.process("m", "t.merge").in("in", std::vector<std::string>{"sq"}).out("out", "all");
    g.process("sink", "t.sink").in("in", "all", Deliver::Hash);
    g.channel("nums", 0).channel("nums", 4);
    const Plan p = g.plan();
    CHECK(p.name == "squares");
    CHECK(p.file.empty());
    CHECK(p.processes.size() == 5);
    CHECK(channel(p, "nums").capacity == 4);
    CHECK(channel(p, "nums").kind == ChannelKind::One2Any);
    CHECK(channel(p, "sq").kind == ChannelKind::Any2One);
    CHECK(channel(p, "all").deliver == Deliver::Hash);
    CHECK(!process(p, "sq[1]").ordered);
    CHECK(process(p, "sq[0]").exprs.at("expr").source() == "x * x");
    CHECK(process(p, "src").params.at("rate") == Value(3.0));
    CHECK(g.spec().processes.size() == 4);

    Graph bad;
    bad.process("src", "t.source").with("stpo", 1).out("out", "c");
    bad.process("sink", "t.sink").in("in", std::vector<std::string>{"c"});
    try {
        bad.plan();
        FAIL("expected a GraphError");
    } catch (const GraphError& e) {
        CHECK(std::string(e.what()) ==
              "error: process 'src': unknown parameter 'stpo' for node 't.source' "
              "(did you mean 'stop'?)\n"
              "error: process 'src': missing parameter 'stop' for node 't.source'\n"
              "error: process 'sink': port 'in' of node 't.sink' takes one channel, got a list");
    }
}

// ---- files -----------------------------------------------------------------------------------

TEST_CASE("graph: files: name from the stem, plugins relative to the file") {
    TempFile f("chanflow: 1\nplugins: [lib/none.so]\n", "wordcount.yaml");
    const GraphSpec s = load_graph_spec(f.path.string());
    CHECK(s.name == "wordcount");
    REQUIRE(s.plugins.size() == 1);
    CHECK(s.plugins[0] == (f.path.parent_path() / "lib/none.so").string());
    try {
        load_plan(f.path.string());
        FAIL("expected a GraphError");
    } catch (const GraphError& e) {
        REQUIRE(e.diagnostics().size() == 1);
        const Diagnostic& d = e.diagnostics()[0];
        CHECK(d.pos.line == 2);
        CHECK(d.pos.column == 11);
        CHECK(d.message.rfind("cannot load plugin '" + s.plugins[0] + "': ", 0) == 0);
    }
}

TEST_CASE("graph: plugin paths: in the file's folder, or by name in CHANFLOW_PLUGIN_PATH") {
    for (const char* path : {"/usr/lib/x.so", "../x.so", "lib/../../x.so"}) {
        CAPTURE(path);
        CHECK(errors(std::string("chanflow: 1\nplugins: [\"") + path + "\"]\n") ==
              Lines{std::string("2:11: plugin '") + path +
                    "': a plugin lies in the graph file's folder or below it, or in a folder of "
                    "CHANFLOW_PLUGIN_PATH (write its file name)"});
    }
    CHECK(errors("chanflow: 1\nparams: {p: x.so}\nplugins: [\"${p}\"]\n") ==
          Lines{"3:11: a plugin path takes no ${...}: a parameter must not choose the code that "
                "runs"});
}

TEST_CASE("graph: files: a missing file is one diagnostic naming it") {
    try {
        load_plan("/nonexistent/g.yaml");
        FAIL("expected a GraphError");
    } catch (const GraphError& e) {
        REQUIRE(e.diagnostics().size() == 1);
        CHECK(e.diagnostics()[0].str() ==
              "error: cannot read graph file '/nonexistent/g.yaml': No such file or directory");
    }
}

TEST_CASE("graph: load_plan reports loading and checking problems together") {
    TempFile f(R"Y(chanflow: 1
chanels: {}
processes:
  src: {nod: t.source, out: {out: a}}
  sq: {node: t.mapp, in: {in: a}}
)Y");
    try {
        load_plan(f.path.string());
        FAIL("expected a GraphError");
    } catch (const GraphError& e) {
        std::vector<std::string> got;
        for (const auto& d : e.diagnostics()) got.push_back(d.str());
        const std::string file = f.path.string();
        // No "missing parameter", "not bound" or "no writer" echoes of the dropped parts.
        CHECK(got == Lines{file + ":2:1: error: unknown key 'chanels' (did you mean 'channels'?)",
                           file + ":4:3: error: missing key 'node' in process 'src'",
                           file + ":4:9: error: unknown key 'nod' (did you mean 'node'?)",
                           file + ":5:14: error: unknown node type 't.mapp' (did you mean "
                                  "'t.map'?)"});
    }
}

TEST_CASE("graph: load_plan keeps channel checks when nothing that binds was dropped") {
    TempFile f(R"Y(chanflow: 1
channels:
  c: {kind: one2many}
processes:
  src: {node: t.source, with: {stop: 3}, out: {out: c}}
  src2: {node: t.source, with: {stop: 3}, out: {out: d}}
)Y");
    try {
        load_plan(f.path.string());
        FAIL("expected a GraphError");
    } catch (const GraphError& e) {
        std::vector<std::string> got;
        for (const auto& d : e.diagnostics())
            got.push_back(std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column) + ": " +
                          d.message);
        CHECK(got == Lines{"3:3: channel 'c' has no reader",
                           "3:13: unknown channel kind 'one2many' (did you mean 'one2any'?)",
                           "6:54: channel 'd' has no reader"});
    }
}

TEST_CASE("graph: Diagnostic::str and closest_match") {
    const Diagnostic placed{SourcePos{"g.yaml", 3, 7}, "bad"};
    const Diagnostic file_only{SourcePos{"g.yaml", 0, 0}, "bad"};
    const Diagnostic nowhere{SourcePos{}, "bad"};
    CHECK(placed.str() == "g.yaml:3:7: error: bad");
    CHECK(file_only.str() == "g.yaml: error: bad");
    CHECK(nowhere.str() == "error: bad");

    CHECK(closest_match("stpo", {"start", "stop"}) == "stop");
    CHECK(closest_match("txt.lines", {"text.words", "text.lines"}) == "text.lines");
    CHECK(closest_match("ab", {"xb", "ax"}) == "xb");  // ties: the first candidate
    CHECK(closest_match("abc", {"xyz"}).empty());
    CHECK(closest_match("processes", {"process"}) == "process");  // 2 edits, 9 / 3 allowed
    CHECK(closest_match("abcdef", {"uvwxyz"}).empty());
    CHECK(closest_match("x", {"n"}) == "n");
    CHECK(std::string(channel_kind_name(ChannelKind::Any2One)) == "any2one");
    CHECK(std::string(deliver_name(Deliver::RoundRobin)) == "round_robin");
}

// ---- scale ---------------------------------------------------------------------------------

TEST_CASE("graph: a generated graph of 10 000 processes loads and checks") {
    REQUIRE(registered);
    constexpr int n = 10000;
    std::string yaml = "chanflow: 1\nchannels:\n  c0: {capacity: 4}\nprocesses:\n";
    yaml += "  src:\n    node: t.source\n    with: {stop: 100}\n    out: {out: c0}\n";
    for (int i = 1; i < n - 1; ++i) {
        const std::string in = "c" + std::to_string(i - 1);
        const std::string out = "c" + std::to_string(i);
        yaml += "  p" + std::to_string(i) + ":\n    node: t.map\n    with: {expr: \"x + 1\"}\n" +
                "    in: {in: " + in + "}\n    out: {out: " + out + "}\n";
    }
    yaml += "  sink: {node: t.sink, in: {in: c" + std::to_string(n - 2) + "}}\n";
    const Plan p = plan_of(yaml);
    CHECK(p.processes.size() == static_cast<std::size_t>(n));
    CHECK(p.channels.size() == static_cast<std::size_t>(n - 1));
    CHECK(channel(p, "c0").capacity == 4);
    CHECK(p.processes.back().name == "sink");
}
