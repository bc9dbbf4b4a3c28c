// Subsampled colour redistributed inside each block by optical density (chroma.hpp).
#include "ihc/scoring/chroma.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include <opencv2/core/hal/intrin.hpp>

namespace ihc::scoring {
namespace {

// Luma in 1/64 grey levels (JFIF's full-range BT.601 weights, the transform a JPEG decoder
// inverts), 0 .. 16320: an index into the OD table.
inline int luma64(const std::uint8_t* p) { return (19595 * p[0] + 38470 * p[1] + 7471 * p[2] + 512) >> 10; }
constexpr int kLumaSteps = 255 * 64 + 1;

// Luma optical density per 1/64 grey level, plus a small floor so that glass (OD 0) keeps its own
// colour: a block of near-white pixels shares its colour evenly.
constexpr float kOdFloor = 0.01f;
const std::array<float, kLumaSteps>& luma_od_table() {
  static const std::array<float, kLumaSteps> table = [] {
    std::array<float, kLumaSteps> t{};
    for (std::size_t i = 0; i < t.size(); ++i)
      t[i] = static_cast<float>(-std::log10(std::max(static_cast<double>(i) / 64.0, 1.0) / 255.0)) + kOdFloor;
    return t;
  }();
  return table;
}

// Rounded and clamped to 0..255 (the same value as the SIMD path's clamp, then round).
inline std::uint8_t to8(float v) {
  const int i = static_cast<int>(v + 0.5f);  // below -0.5 rounds towards zero, clamped to 0 below anyway
  return static_cast<std::uint8_t>(std::clamp(i, 0, 255));
}

// One block's pixels (`n` of them, at p[k]) given the block's colour by their OD shares.
inline void redistribute(std::uint8_t* const* p, int n, const float* od_of) {
  int sum_r = 0, sum_g = 0, sum_b = 0;
  std::array<float, 16> od{};
  std::array<int, 16> y64{};
  float sum_od = 0.0f;
  for (int k = 0; k < n; ++k) {
    sum_r += p[k][0];
    sum_g += p[k][1];
    sum_b += p[k][2];
    y64[static_cast<std::size_t>(k)] = luma64(p[k]);
    od[static_cast<std::size_t>(k)] = od_of[y64[static_cast<std::size_t>(k)]];
    sum_od += od[static_cast<std::size_t>(k)];
  }
  // The block's mean colour is linear in its pixels: one transform of the summed R, G, B.
  const float inv_n = 1.0f / static_cast<float>(n);
  const float mr = static_cast<float>(sum_r) * inv_n, mg = static_cast<float>(sum_g) * inv_n,
              mb = static_cast<float>(sum_b) * inv_n;
  const float cb = -0.168736f * mr - 0.331264f * mg + 0.5f * mb;
  const float cr = 0.5f * mr - 0.418688f * mg - 0.081312f * mb;
  // Each pixel's share of the block's colour: its share of the block's OD. Never all of it: every
  // pixel's OD is at least kOdFloor, so a share stays below n.
  const float per_od = static_cast<float>(n) / sum_od;
  const float dr = 1.402f * cr, dg = -0.344136f * cb - 0.714136f * cr, db = 1.772f * cb;
  for (int k = 0; k < n; ++k) {
    const float luma = static_cast<float>(y64[static_cast<std::size_t>(k)]) * (1.0f / 64.0f);
    const float share = od[static_cast<std::size_t>(k)] * per_od;
    p[k][0] = to8(luma + share * dr);
    p[k][1] = to8(luma + share * dg);
    p[k][2] = to8(luma + share * db);
  }
}

#if CV_SIMD128
// Sixteen pixels of two rows (eight whole 2 x 2 blocks) at once, the same arithmetic as
// redistribute lane by lane: one lane per block, its four pixels in four vectors.
struct Planes {
  cv::v_uint32x4 even[2], odd[2];  // pixels 0,2,4,6 / 1,3,5,7 (half 0) and 8.. (half 1)
};
inline Planes split(const cv::v_uint8x16& v) {
  cv::v_uint16x8 lo, hi;
  cv::v_expand(v, lo, hi);
  const cv::v_uint32x4 mask = cv::v_setall_u32(0xFFFF);
  const cv::v_uint32x4 l = cv::v_reinterpret_as_u32(lo), h = cv::v_reinterpret_as_u32(hi);
  return {{l & mask, h & mask}, {l >> 16, h >> 16}};
}
inline cv::v_uint32x4 luma64(const cv::v_uint32x4& r, const cv::v_uint32x4& g, const cv::v_uint32x4& b) {
  return (r * cv::v_setall_u32(19595) + g * cv::v_setall_u32(38470) + b * cv::v_setall_u32(7471) +
          cv::v_setall_u32(512)) >> 10;
}
inline cv::v_float32x4 gather(const float* table, const cv::v_uint32x4& index) {
  alignas(16) std::uint32_t i[4];
  cv::v_store_aligned(i, index);
  return cv::v_float32x4(table[i[0]], table[i[1]], table[i[2]], table[i[3]]);
}
inline cv::v_float32x4 f32(const cv::v_uint32x4& v) { return cv::v_cvt_f32(cv::v_reinterpret_as_s32(v)); }
// Rounded and clamped as to8, back to 16-bit lanes with even and odd pixels interleaved.
inline cv::v_uint32x4 to8(const cv::v_float32x4& v) {
  const cv::v_float32x4 c = cv::v_min(cv::v_max(v, cv::v_setzero_f32()), cv::v_setall_f32(255.0f)) + cv::v_setall_f32(0.5f);
  return cv::v_reinterpret_as_u32(cv::v_trunc(c));
}

void redistribute_16(std::uint8_t* a, std::uint8_t* b, const float* od_of) {
  cv::v_uint8x16 ra, ga, ba, rb, gb, bb;
  cv::v_load_deinterleave(a, ra, ga, ba);
  cv::v_load_deinterleave(b, rb, gb, bb);
  const Planes r[2] = {split(ra), split(rb)}, g[2] = {split(ga), split(gb)}, bl[2] = {split(ba), split(bb)};
  cv::v_uint32x4 out[3][2][2][2];  // channel, row, half, even/odd
  const cv::v_float32x4 inv64 = cv::v_setall_f32(1.0f / 64.0f);
  for (int half = 0; half < 2; ++half) {
    cv::v_float32x4 y[2][2], od[2][2];  // row, even/odd
    cv::v_float32x4 sr = cv::v_setzero_f32(), sg = sr, sb = sr, so = sr;
    for (int row = 0; row < 2; ++row)
      for (int eo = 0; eo < 2; ++eo) {
        const auto& R = eo ? r[row].odd[half] : r[row].even[half];
        const auto& G = eo ? g[row].odd[half] : g[row].even[half];
        const auto& B = eo ? bl[row].odd[half] : bl[row].even[half];
        const cv::v_uint32x4 y64 = luma64(R, G, B);
        y[row][eo] = f32(y64) * inv64;
        od[row][eo] = gather(od_of, y64);
        sr = sr + f32(R);
        sg = sg + f32(G);
        sb = sb + f32(B);
        so = so + od[row][eo];
      }
    const cv::v_float32x4 quarter = cv::v_setall_f32(0.25f);
    const cv::v_float32x4 cb = (cv::v_setall_f32(-0.168736f) * sr + cv::v_setall_f32(-0.331264f) * sg +
                                cv::v_setall_f32(0.5f) * sb) * quarter;
    const cv::v_float32x4 cr = (cv::v_setall_f32(0.5f) * sr + cv::v_setall_f32(-0.418688f) * sg +
                                cv::v_setall_f32(-0.081312f) * sb) * quarter;
    const cv::v_float32x4 per_od = cv::v_setall_f32(4.0f) / so;
    const cv::v_float32x4 dr = cv::v_setall_f32(1.402f) * cr;
    const cv::v_float32x4 dg = cv::v_setall_f32(-0.344136f) * cb + cv::v_setall_f32(-0.714136f) * cr;
    const cv::v_float32x4 db = cv::v_setall_f32(1.772f) * cb;
    for (int row = 0; row < 2; ++row)
      for (int eo = 0; eo < 2; ++eo) {
        const cv::v_float32x4 share = od[row][eo] * per_od;
        out[0][row][half][eo] = to8(y[row][eo] + share * dr);
        out[1][row][half][eo] = to8(y[row][eo] + share * dg);
        out[2][row][half][eo] = to8(y[row][eo] + share * db);
      }
  }
  for (int row = 0; row < 2; ++row) {
    cv::v_uint8x16 c[3];
    for (int ch = 0; ch < 3; ++ch) {
      const auto& o = out[ch][row];
      const cv::v_uint16x8 lo = cv::v_reinterpret_as_u16(o[0][0] | (o[0][1] << 16));
      const cv::v_uint16x8 hi = cv::v_reinterpret_as_u16(o[1][0] | (o[1][1] << 16));
      c[ch] = cv::v_pack(lo, hi);
    }
    cv::v_store_interleave(row ? b : a, c[0], c[1], c[2]);
  }
}
#endif

}  // namespace

void restore_subsampled_chroma(cv::Mat& rgb, int block_x, int block_y, int offset_x, int offset_y) {
  CV_Assert(rgb.type() == CV_8UC3);
  block_x = std::clamp(block_x, 1, 4);
  block_y = std::clamp(block_y, 1, 4);
  if ((block_x == 1 && block_y == 1) || rgb.empty()) return;
  offset_x = ((offset_x % block_x) + block_x) % block_x;
  offset_y = ((offset_y % block_y) + block_y) % block_y;
  const float* od_of = luma_od_table().data();
  std::array<std::uint8_t*, 16> px{};
  for (int by = -offset_y; by < rgb.rows; by += block_y) {
    const int y0 = std::max(0, by), ny = std::min(rgb.rows, by + block_y) - y0;
    int simd_from = 0, simd_to = 0;  // columns of whole blocks done sixteen at a time
#if CV_SIMD128
    if (block_x == 2 && block_y == 2 && ny == 2) {  // 4:2:0, the common case
      simd_from = simd_to = offset_x;               // the first whole block
      for (; simd_to + 15 < rgb.cols; simd_to += 16)
        redistribute_16(rgb.ptr<std::uint8_t>(y0) + 3 * simd_to, rgb.ptr<std::uint8_t>(y0 + 1) + 3 * simd_to, od_of);
    }
#endif
    for (int bx = -offset_x; bx < rgb.cols; bx += block_x) {
      if (bx >= simd_from && bx < simd_to) continue;
      const int x0 = std::max(0, bx), nx = std::min(rgb.cols, bx + block_x) - x0;
      if (nx * ny < 2) continue;
      int n = 0;
      for (int r = 0; r < ny; ++r)
        for (int c = 0; c < nx; ++c) px[static_cast<std::size_t>(n++)] = rgb.ptr<std::uint8_t>(y0 + r) + 3 * (x0 + c);
      redistribute(px.data(), n, od_of);
    }
  }
}

}  // namespace ihc::scoring
