#pragma once
// The process's allocator, set for tile-by-tile work: each analysis tile allocates and frees a few
// buffers of megabytes (the tile's pixels, its stain channels). glibc serves blocks that size with
// fresh mmap'ed pages (or hands its heap's top back to the system after each tile), so every tile
// pays first-touch page faults on all of them. Raising the mmap and trim thresholds keeps the
// freed buffers in the heap for the next tile. Measured in benchmarks/history.md. Process-wide:
// called by the programs (the command line), never implicitly by the library.
namespace ihc::engine {

// Call once, at start-up, before any thread is started. A no-op where the C library is not glibc.
void keep_tile_buffers_mapped();

}  // namespace ihc::engine
