// chanflow/chanflow.hpp — everything an embedding program needs.
#pragma once

#include "chanflow/bytes.hpp"
#include "chanflow/channel_types.hpp"
#include "chanflow/expr.hpp"
#include "chanflow/gpu.hpp"
#include "chanflow/graph.hpp"
#include "chanflow/node.hpp"
#include "chanflow/partitions.hpp"
#include "chanflow/picture.hpp"
#include "chanflow/placement.hpp"
#include "chanflow/process.hpp"
#include "chanflow/progress.hpp"
#include "chanflow/runtime.hpp"
#include "chanflow/value.hpp"
