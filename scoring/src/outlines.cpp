// Cell outlines (cell_stages.hpp): the seeded watershed on DAB.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cell_stages.hpp"

namespace ihc::scoring::detail {

// Seeded watershed by priority flood with a bucket queue (O(pixels)). Priority of a pixel for a
// cell: DAB plus a small penalty growing with distance from that cell's seed, so that where there
// is no membrane the outline falls half-way between nuclei. A cell never grows past max_r;
// pixels no cell reaches keep label 0.
// `dab_half` is the DAB at the seeds' and labels' resolution (half_size of the analysed DAB).
cv::Mat grow_cells(const cv::Mat& dab_half, const std::vector<Seed>& seeds, double max_r) {
  const int w = dab_half.cols, h = dab_half.rows;
  if (seeds.empty()) return cv::Mat(h, w, CV_32S, cv::Scalar(0));
  cv::Mat labels(h, w, CV_32S);  // every pixel is written at the end
  constexpr int kBucketBits = 10, kBuckets = 1 << kBucketBits;
  constexpr std::uint32_t kBucketMask = kBuckets - 1;
  constexpr float kTop = 1.5f;  // OD mapped to the last bucket
  constexpr float kDistancePenalty = 0.1f;
  // Per pixel one word, label << kBucketBits | DAB bucket: the flood's random accesses touch one
  // array, not two. Queue entries pack (y << 16 | x), so no division finds a pixel's row.
  CV_Assert(w < 65536 && h < 65536 && seeds.size() < (std::size_t{1} << (32 - kBucketBits)));
  const float scale = kBuckets / kTop;
  std::vector<std::uint32_t> px(static_cast<std::size_t>(w) * static_cast<std::size_t>(h));
  // Clamped as a float, then truncated: the same bucket as clamping the truncated integer, and
  // the loop vectorises.
  const auto bucket_of = [&](float f) {
    return static_cast<std::uint32_t>(static_cast<int>(std::min(std::max(f * scale, 0.0f), kBuckets - 1.0f)));
  };
  for (int y = 0; y < h; ++y) {
    const float* d = dab_half.ptr<float>(y);
    std::uint32_t* dst = px.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(w);
    for (int x = 0; x < w; ++x) dst[x] = bucket_of(d[x]);
  }
  // The distance penalty per squared distance from the seed (no square root in the flood).
  const auto max_d2 = static_cast<int>(std::floor(max_r * max_r));
  std::vector<int> penalty(static_cast<std::size_t>(max_d2) + 1);
  for (int d2 = 0; d2 <= max_d2; ++d2)
    penalty[static_cast<std::size_t>(d2)] = static_cast<int>(kDistancePenalty * std::sqrt(d2 / (max_r * max_r)) * scale);

  // One FIFO per bucket: every pixel is queued at most once (it is labelled when queued), and a
  // bucket is read in order while it may still grow. The order, and so the labels, are those of
  // a linked-list bucket queue.
  std::vector<std::vector<std::uint32_t>> queue(kBuckets);
  {  // Room for about what each bucket will take (a pixel is queued at or above its own bucket).
    // Four histograms: runs of equal buckets (most of a tile is near 0 OD) would otherwise
    // make each increment wait for the one before.
    std::vector<std::uint32_t> count(4 * kBuckets, 0);
    const std::size_t n_px = px.size();
    std::size_t i = 0;
    for (; i + 4 <= n_px; i += 4) {
      ++count[px[i]];
      ++count[kBuckets + px[i + 1]];
      ++count[2 * kBuckets + px[i + 2]];
      ++count[3 * kBuckets + px[i + 3]];
    }
    for (; i < n_px; ++i) ++count[px[i]];
    for (int b = 0; b < kBuckets; ++b) {
      const auto c = count[static_cast<std::size_t>(b)] + count[static_cast<std::size_t>(kBuckets + b)] +
                     count[static_cast<std::size_t>(2 * kBuckets + b)] + count[static_cast<std::size_t>(3 * kBuckets + b)];
      queue[static_cast<std::size_t>(b)].reserve(c + 16);
    }
  }
  auto pack = [](int x, int y) { return static_cast<std::uint32_t>(y) << 16 | static_cast<std::uint32_t>(x); };
  std::uint32_t* pix = px.data();
  for (std::size_t k = 0; k < seeds.size(); ++k) {
    std::uint32_t& v = pix[static_cast<std::size_t>(seeds[k].y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(seeds[k].x)];
    v |= static_cast<std::uint32_t>(k + 1) << kBucketBits;
    queue[v & kBucketMask].push_back(pack(seeds[k].x, seeds[k].y));
  }
  const auto* pen = penalty.data();
  for (int b = 0; b < kBuckets; ++b) {
    auto& fifo = queue[static_cast<std::size_t>(b)];
    for (std::size_t q = 0; q < fifo.size(); ++q) {
      const int x = static_cast<int>(fifo[q] & 0xffffu), y = static_cast<int>(fifo[q] >> 16);
      const int i = y * w + x;
      const std::uint32_t l = pix[i] >> kBucketBits;
      const Seed& s = seeds[l - 1];
      auto visit = [&](int j, int nx, int ny) {
        const std::uint32_t v = pix[j];
        if (v > kBucketMask) return;  // labelled
        const int dx = nx - s.x, dy = ny - s.y, d2 = dx * dx + dy * dy;
        if (d2 > max_d2) return;
        pix[j] = v | l << kBucketBits;
        queue[static_cast<std::size_t>(std::min(std::max(static_cast<int>(v) + pen[d2], b), kBuckets - 1))].push_back(
            pack(nx, ny));
      };
      if (x > 0) visit(i - 1, x - 1, y);
      if (x + 1 < w) visit(i + 1, x + 1, y);
      if (y > 0) visit(i - w, x, y - 1);
      if (y + 1 < h) visit(i + w, x, y + 1);
    }
    std::vector<std::uint32_t>().swap(fifo);  // done with this bucket: nothing is pushed below b
  }
  for (int y = 0; y < h; ++y) {
    const std::uint32_t* src = pix + static_cast<std::size_t>(y) * static_cast<std::size_t>(w);
    int* dst = labels.ptr<int>(y);
    for (int x = 0; x < w; ++x) dst[x] = static_cast<int>(src[x] >> kBucketBits);
  }
  return labels;
}

}  // namespace ihc::scoring::detail
