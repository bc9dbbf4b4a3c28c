// The allocator thresholds for tile-by-tile work (allocator.hpp).
#include "ihc/engine/allocator.hpp"

#include <cstdlib>  // defines __GLIBC__ where the C library is glibc
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ihc::engine {

void keep_tile_buffers_mapped() {
#if defined(__GLIBC__)
  // Blocks up to 32 MiB (glibc's largest mmap threshold; a tile's buffers are 2-16 MiB) come from
  // the heap, and up to 128 MiB of freed heap stays mapped instead of going back after each tile.
  constexpr int kMmapThresholdBytes = 32 << 20;
  constexpr int kTrimThresholdBytes = 128 << 20;
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);
  mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
#endif
}

}  // namespace ihc::engine
