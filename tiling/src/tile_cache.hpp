#pragma once
// Decoded source tiles on a region request's border. Analysis tiles overlap by their halo, so the
// tiles on a request's border are needed again by the neighbouring request: this keeps them,
// least recently used first out, within a fixed number of bytes (memory does not grow with the
// slide). Thread-safe; a buffer being read stays valid after it is evicted.
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ihc::tiling::detail {

class TileCache {
 public:
  using Pixels = std::shared_ptr<const std::vector<unsigned char>>;

  explicit TileCache(std::size_t budget_bytes) : budget_(budget_bytes) {}

  // (level, tile index, DCT scale 1..8) as one key.
  static std::uint64_t key(int level, std::size_t index, int scale) {
    return static_cast<std::uint64_t>(level) << 48 | static_cast<std::uint64_t>(scale) << 40 |
           static_cast<std::uint64_t>(index);
  }

  Pixels find(std::uint64_t key) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);  // now the most recently used
    return it->second->second;
  }

  void clear() {
    const std::lock_guard<std::mutex> lock(mutex_);
    lru_.clear();
    index_.clear();
    bytes_ = 0;
  }

  void put(std::uint64_t key, Pixels pixels) {
    const std::size_t bytes = pixels->size();
    if (bytes > budget_) return;
    const std::lock_guard<std::mutex> lock(mutex_);
    if (index_.count(key)) return;  // another thread decoded it meanwhile
    lru_.emplace_front(key, std::move(pixels));
    index_.emplace(key, lru_.begin());
    bytes_ += bytes;
    while (bytes_ > budget_) {
      bytes_ -= lru_.back().second->size();
      index_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<std::uint64_t, Pixels>> lru_;
  std::unordered_map<std::uint64_t, std::list<std::pair<std::uint64_t, Pixels>>::iterator> index_;
  std::size_t bytes_ = 0;
  const std::size_t budget_;
};

}  // namespace ihc::tiling::detail
