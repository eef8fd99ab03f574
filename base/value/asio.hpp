// The one place Boost.Asio is included. Boost 1.74's asio/awaitable.hpp
// misses `#include <utility>` under GCC 12 / C++20, so it comes first.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace anvil {
namespace asio = boost::asio;
}
