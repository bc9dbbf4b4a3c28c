// Synthetic HER2 IHC slides: renderer, truth, and the streaming slide writer. See synth.hpp.
//
// Determinism: every random choice is a hash of (seed, integer lattice index or pixel
// coordinate); a pixel depends only on its own coordinates, computed in fixed 4 µm blocks on a
// global grid (whatever tile or region asked for it), so the output never depends on the tiling,
// the thread count or the scheduling.
#include "ihc/synth/synth.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "ihc/tiling/pyramid_writer.hpp"

namespace ihc::synth {
namespace {

// ---------------------------------------------------------------- hashing and noise

constexpr std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline std::uint64_t hash_ij(std::uint64_t key, std::int64_t i, std::int64_t j) {
  return mix64(key ^ mix64(static_cast<std::uint64_t>(i) * 0xD6E8FEB86659FD93ull ^
                           mix64(static_cast<std::uint64_t>(j) + 0x632BE59BD9B4E019ull)));
}

inline double unit(std::uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// A small stream of uniforms from one hash.
struct Rng {
  std::uint64_t state;
  double next() {
    state += 0x9E3779B97F4A7C15ull;
    return unit(mix64(state));
  }
  double range(double lo, double hi) { return lo + (hi - lo) * next(); }
};

inline std::uint32_t hash32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

inline std::uint32_t pixel_hash(std::int64_t x, std::int64_t y, std::uint32_t key) {
  return hash32(static_cast<std::uint32_t>(x) * 0x9E3779B1u ^
                hash32(static_cast<std::uint32_t>(y) * 0x85EBCA77u ^ key));
}

inline int ifloor(float v) {
  const int i = static_cast<int>(v);
  return (static_cast<float>(i) > v) ? i - 1 : i;
}

// Value noise in [0, 1] with smoothstep interpolation, from permutation tables (per-pixel
// textures: cheaper than hashing). Periodic every 4096 lattice cells; `key` shifts the pattern.
struct TextureNoise {
  static constexpr int kN = 4096;
  std::vector<std::uint16_t> perm;  // 2 * kN entries: a permutation, twice
  std::vector<float> value;         // kN uniform values

  explicit TextureNoise(std::uint64_t seed) : perm(2 * kN), value(kN) {
    std::uint64_t st = seed;
    auto next = [&st] {
      st += 0x9E3779B97F4A7C15ull;
      return mix64(st);
    };
    for (int i = 0; i < kN; ++i) perm[static_cast<std::size_t>(i)] = static_cast<std::uint16_t>(i);
    for (int i = kN - 1; i > 0; --i)
      std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(next() % static_cast<std::uint64_t>(i + 1))]);
    for (int i = 0; i < kN; ++i) perm[static_cast<std::size_t>(kN + i)] = perm[static_cast<std::size_t>(i)];
    for (int i = 0; i < kN; ++i) value[static_cast<std::size_t>(i)] = static_cast<float>(unit(next()));
  }

  float operator()(float x, float y, std::uint32_t key) const {
    const int ix = ifloor(x), iy = ifloor(y);
    float tx = x - static_cast<float>(ix), ty = y - static_cast<float>(iy);
    tx = tx * tx * (3.0f - 2.0f * tx);
    ty = ty * ty * (3.0f - 2.0f * ty);
    const unsigned mx = static_cast<unsigned>(ix + static_cast<int>(key & 0xFFFu)) & (kN - 1);
    const unsigned my = static_cast<unsigned>(iy + static_cast<int>((key >> 12) & 0xFFFu)) & (kN - 1);
    const unsigned a = perm[mx], b = perm[(mx + 1) & (kN - 1)];
    const unsigned my1 = (my + 1) & (kN - 1);
    const float v00 = value[perm[a + my]], v10 = value[perm[b + my]];
    const float v01 = value[perm[a + my1]], v11 = value[perm[b + my1]];
    const float p = v00 + (v10 - v00) * tx;
    const float q = v01 + (v11 - v01) * tx;
    return p + (q - p) * ty;
  }
};

// Value noise in [-1, 1] with quintic interpolation (slow fields, double precision).
double value_noise(double x, double y, std::uint64_t key) {
  const double fx = std::floor(x), fy = std::floor(y);
  const auto ix = static_cast<std::int64_t>(fx), iy = static_cast<std::int64_t>(fy);
  double tx = x - fx, ty = y - fy;
  tx = tx * tx * tx * (tx * (tx * 6.0 - 15.0) + 10.0);
  ty = ty * ty * ty * (ty * (ty * 6.0 - 15.0) + 10.0);
  const double v00 = unit(hash_ij(key, ix, iy)), v10 = unit(hash_ij(key, ix + 1, iy));
  const double v01 = unit(hash_ij(key, ix, iy + 1)), v11 = unit(hash_ij(key, ix + 1, iy + 1));
  const double a = v00 + (v10 - v00) * tx, b = v01 + (v11 - v01) * tx;
  return 2.0 * (a + (b - a) * ty) - 1.0;
}

// Fractal sum; each octave rotated (no grid-aligned features) and normalised to about [-1, 1].
double fbm(double x, double y, std::uint64_t key, int octaves, double gain) {
  double sum = 0, amp = 1, norm = 0;
  for (int o = 0; o < octaves; ++o) {
    sum += amp * value_noise(x + 17.31 * o, y - 9.77 * o, key + static_cast<std::uint64_t>(o) * 0x51ull);
    norm += amp;
    amp *= gain;
    const double rx = 0.8 * x - 0.6 * y, ry = 0.6 * x + 0.8 * y;
    x = 2.0 * rx;
    y = 2.0 * ry;
  }
  return sum / norm;
}

// ---------------------------------------------------------------- model

constexpr double kSpacingUm = 12.5;         // tumour-cell lattice spacing
constexpr double kJitterUm = 0.18 * kSpacingUm;
constexpr double kPatchUm = 110.0;          // class patches
constexpr double kIndividualClass = 0.08;   // cells that draw their class alone
constexpr double kPsfSigmaUm = 0.4;         // optical blur
constexpr double kBlockUm = 4.0;            // render block
constexpr double kGridUm = 8.0;             // coarse grid of the slow fields
constexpr double kSearchUm = 20.0;          // sites that can affect a block lie within this
constexpr float kI0 = 240.0f;
constexpr double kCutSigmas = 2.5;          // membrane profiles end here (tapered to 0)
constexpr int kExpLutSize = 1024;           // tapered exp(-z), z in [0, kCutSigmas^2 / 2]
constexpr float kExpLutMax = static_cast<float>(kCutSigmas * kCutSigmas / 2.0);

enum SiteKind : std::uint8_t { kEmpty = 0, kTumour = 1, kFibroblast = 2, kLymphocyte = 3 };

// Class membrane appearance: peak DAB after blur (unit stain vectors) and line FWHM in µm.
struct MembraneClass {
  double peak, fwhm_um;
};
constexpr MembraneClass kMembrane[4] = {{0.0, 0.0}, {0.12, 0.7}, {0.34, 1.0}, {0.95, 2.0}};

struct SiteCore {
  double x = 0, y = 0;   // µm
  bool tissue = false;
  bool tumour = false;
  std::uint8_t cls = 0;
};

struct Site {
  double px = 0, py = 0;  // level-0 pixel units (pixel (i, j) centre at i + 0.5, j + 0.5)
  std::uint8_t kind = kEmpty;
  std::uint8_t cls = 0;
  std::uint8_t narcs = 0;
  float R = 0;            // tumour: cell radius cap (px)
  float ncx = 0, ncy = 0; // nucleus centre offset (px)
  float qa = 0, qb = 0, qc = 0;  // nucleus quadratic form (px^-2), 1 on the outline
  float edge = 0;         // nucleus soft edge, in normalised radius
  float hn = 0, hc = 0;   // haematoxylin: nucleus, cytoplasm
  float peak = 0, inv2s2 = 0, cut = 0;  // membrane: peak, 1/(2 sigma^2) px^-2, kCutSigmas sigma px
  float ax[3] = {}, ay[3] = {}, acos_[3] = {}, aramp[3] = {};  // 1+ arcs
  float m1x = 0, m1y = 0, m2x = 0, m2y = 0, m2a = 0;            // along-membrane modulation
  std::uint32_t key = 0;
};

struct Model {
  SynthOptions o;
  double mpp = 0.25, inv_mpp = 4;
  double width_um = 0, height_um = 0, scale_um = 0;
  std::uint64_t k_tissue = 0, k_detail = 0, k_nest = 0, k_site = 0, k_attr = 0, k_patch = 0, k_warp = 0;
  std::uint32_t k_pixel = 0, k_fibre = 0;
  double tissue_thr = 0, nest_thr = 0;
  double tissue_target = 0.5, tumour_target = 0.6;
  double row_h = kSpacingUm * std::sqrt(3.0) / 2.0;
  std::array<double, 4> cdf{};
  double fibre_angle = 0;
  float fibre_c = 1, fibre_s = 0;
  // Rendering constants (pixels).
  int block_px = 16;
  int grid_px = 32;
  float search_px = 80;
  float margin_px = 0;   // extra reach of membranes beyond the nearest site
  float hv[3]{}, dv[3]{};
  float residual[3] = {0.020f, 0.026f, 0.020f};
  float exp_lut[kExpLutSize + 2]{};
  TextureNoise texture;

  explicit Model(const SynthOptions& options);

  // Tissue where this exceeds tissue_thr: a few noise-distorted elliptical blobs.
  struct Blob {
    double cx, cy, c, s, inv_rx, inv_ry;  // slide-relative units
  };
  std::vector<Blob> blobs;
  double tissue_field(double x, double y) const {
    const double u = x / width_um, v = y / height_um;
    double shape = -1.0;
    for (const Blob& b : blobs) {
      const double du = u - b.cx, dw = v - b.cy;
      const double a = (b.c * du + b.s * dw) * b.inv_rx, c = (-b.s * du + b.c * dw) * b.inv_ry;
      shape = std::max(shape, 1.0 - std::sqrt(a * a + c * c));
    }
    const double su = x / scale_um, sv = y / scale_um;
    const double base = fbm(su * 3.0, sv * 3.0, k_tissue, 3, 0.5);
    const double detail = fbm(x / 140.0, y / 140.0, k_detail, 2, 0.5);
    // Keep clear of the slide's borders (a margin of 4 % of the long side).
    const double e = std::min(std::min(x, width_um - x), std::min(y, height_um - y)) / scale_um;
    const double pen = e < 0.04 ? 0.6 * (0.04 - e) / 0.04 : 0.0;
    return shape + 0.45 * base + 0.12 * detail - pen;
  }
  double nest_field(double x, double y) const { return fbm(x / 320.0, y / 320.0, k_nest, 4, 0.62); }
  double warp(double x, double y, int axis) const {
    return 22.0 * value_noise(x / 130.0, y / 130.0, k_warp + static_cast<std::uint64_t>(axis));
  }

  int class_from(double u) const {
    for (int c = 0; c < 3; ++c)
      if (u < cdf[static_cast<std::size_t>(c)]) return c;
    return 3;
  }

  void lattice_position(std::int64_t i, std::int64_t j, double& x, double& y) const {
    const std::uint64_t h = hash_ij(k_site, i, j);
    const double jx = (2.0 * unit(mix64(h + 1)) - 1.0) * kJitterUm;
    const double jy = (2.0 * unit(mix64(h + 2)) - 1.0) * kJitterUm;
    x = (static_cast<double>(i) + ((j & 1) ? 0.5 : 0.0) + 0.25) * kSpacingUm + jx;
    y = (static_cast<double>(j) + 0.5) * row_h + jy;
  }

  int patch_class(double x, double y) const {
    const double gx = x / kPatchUm, gy = y / kPatchUm;
    const auto cx = static_cast<std::int64_t>(std::floor(gx)), cy = static_cast<std::int64_t>(std::floor(gy));
    double best = std::numeric_limits<double>::max();
    std::uint64_t best_h = 0;
    for (std::int64_t dy = -1; dy <= 1; ++dy)
      for (std::int64_t dx = -1; dx <= 1; ++dx) {
        const std::uint64_t h = hash_ij(k_patch, cx + dx, cy + dy);
        const double px = static_cast<double>(cx + dx) + 0.15 + 0.7 * unit(mix64(h + 1));
        const double py = static_cast<double>(cy + dy) + 0.15 + 0.7 * unit(mix64(h + 2));
        const double d = (px - gx) * (px - gx) + (py - gy) * (py - gy);
        if (d < best) {
          best = d;
          best_h = h;
        }
      }
    return class_from(unit(mix64(best_h + 3)));
  }

  SiteCore site_core(std::int64_t i, std::int64_t j) const;
  Site make_site(std::int64_t i, std::int64_t j) const;

  // Lattice rows and columns whose sites can lie in [x0, x1] x [y0, y1] (µm).
  void lattice_range(double x0, double y0, double x1, double y1, std::int64_t& i0, std::int64_t& i1,
                     std::int64_t& j0, std::int64_t& j1) const {
    j0 = static_cast<std::int64_t>(std::floor((y0 - kJitterUm) / row_h - 0.5)) - 1;
    j1 = static_cast<std::int64_t>(std::ceil((y1 + kJitterUm) / row_h - 0.5)) + 1;
    i0 = static_cast<std::int64_t>(std::floor((x0 - kJitterUm) / kSpacingUm - 0.75)) - 1;
    i1 = static_cast<std::int64_t>(std::ceil((x1 + kJitterUm) / kSpacingUm - 0.25)) + 1;
  }
};

Model::Model(const SynthOptions& options)
    : o(options), texture(mix64(options.seed ^ 0x7E57u)) {
  mpp = o.mpp;
  inv_mpp = 1.0 / mpp;
  width_um = static_cast<double>(o.width) * mpp;
  height_um = static_cast<double>(o.height) * mpp;
  scale_um = std::max(width_um, height_um);
  const std::uint64_t s = mix64(o.seed ^ 0x1BD11BDAA9FC1A22ull);
  k_tissue = mix64(s + 1);
  k_detail = mix64(s + 2);
  k_nest = mix64(s + 3);
  k_site = mix64(s + 4);
  k_attr = mix64(s + 5);
  k_patch = mix64(s + 6);
  k_warp = mix64(s + 7);
  k_pixel = static_cast<std::uint32_t>(mix64(s + 8));
  k_fibre = static_cast<std::uint32_t>(mix64(s + 9));
  Rng r{mix64(s + 10)};
  tissue_target = r.range(0.42, 0.58);
  tumour_target = r.range(0.52, 0.68);
  fibre_angle = r.range(0.0, 3.14159265358979);
  // 2-4 blobs spread along the slide's long axis, one per strip, in slide-relative units.
  const int nblobs = 2 + std::min(2, static_cast<int>(r.next() * 3.0));
  const bool wide = width_um >= height_um;
  for (int b = 0; b < nblobs; ++b) {
    const double along = (b + r.range(0.3, 0.7)) / nblobs, across = r.range(0.35, 0.65);
    const double r_along = r.range(0.35, 0.55) / nblobs, r_across = r.range(0.18, 0.32);
    const double angle = r.range(-0.4, 0.4);
    if (wide)
      blobs.push_back({along, across, std::cos(angle), std::sin(angle), 1.0 / r_along, 1.0 / r_across});
    else
      blobs.push_back({across, along, std::cos(angle), std::sin(angle), 1.0 / r_across, 1.0 / r_along});
  }
  fibre_c = static_cast<float>(std::cos(fibre_angle));
  fibre_s = static_cast<float>(std::sin(fibre_angle));
  double acc = 0;
  for (std::size_t c = 0; c < 4; ++c) {
    acc += o.mix[c];
    cdf[c] = acc;
  }
  cdf[3] = 2.0;  // guard against rounding

  // Thresholds: quantiles of the fields on a fixed sample grid.
  constexpr int kSamples = 160;
  std::vector<double> tv, nv;
  tv.reserve(kSamples * kSamples);
  std::vector<std::pair<double, double>> pts;
  for (int gy = 0; gy < kSamples; ++gy)
    for (int gx = 0; gx < kSamples; ++gx) {
      const double x = (gx + 0.5) / kSamples * width_um, y = (gy + 0.5) / kSamples * height_um;
      tv.push_back(tissue_field(x, y));
      pts.emplace_back(x, y);
    }
  std::vector<double> sorted = tv;
  auto q = static_cast<std::size_t>((1.0 - tissue_target) * static_cast<double>(sorted.size()));
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(q), sorted.end());
  tissue_thr = sorted[q];
  for (std::size_t k = 0; k < tv.size(); ++k)
    if (tv[k] > tissue_thr) nv.push_back(nest_field(pts[k].first, pts[k].second));
  if (nv.empty()) nv.push_back(0.0);
  q = static_cast<std::size_t>((1.0 - tumour_target) * static_cast<double>(nv.size()));
  q = std::min(q, nv.size() - 1);
  std::nth_element(nv.begin(), nv.begin() + static_cast<std::ptrdiff_t>(q), nv.end());
  nest_thr = nv[q];

  block_px = std::clamp(static_cast<int>(std::lround(kBlockUm * inv_mpp)), 8, 32);
  grid_px = std::clamp(static_cast<int>(std::lround(kGridUm * inv_mpp)), 8, 64);
  search_px = static_cast<float>(kSearchUm * inv_mpp);
  const double sig3 = std::sqrt(std::pow(kMembrane[3].fwhm_um / 2.3548, 2) + kPsfSigmaUm * kPsfSigmaUm);
  // A membrane shows within kCutSigmas sigma of its outline; such a site is at most twice that
  // farther from a pixel than the pixel's nearest site.
  margin_px = static_cast<float>(2.0 * kCutSigmas * sig3 * 1.15 * inv_mpp + 1.0);
  for (int c = 0; c < 3; ++c) {
    hv[c] = static_cast<float>(o.stain_h[static_cast<std::size_t>(c)]);
    dv[c] = static_cast<float>(o.stain_dab[static_cast<std::size_t>(c)]);
  }
  // exp(-z) lowered to reach 0 at the cut, so the profile has no step there.
  const double tail = std::exp(-static_cast<double>(kExpLutMax));
  for (int k = 0; k <= kExpLutSize + 1; ++k) {
    const double z = std::min(static_cast<double>(kExpLutMax), static_cast<double>(k) * kExpLutMax / kExpLutSize);
    exp_lut[k] = static_cast<float>((std::exp(-z) - tail) / (1.0 - tail));
  }
}

// Position, tissue, tumour and class of lattice site (i, j): the only inputs of the truth, and
// shared by the renderer so both always agree.
[[gnu::noinline]] SiteCore Model::site_core(std::int64_t i, std::int64_t j) const {
  SiteCore c;
  lattice_position(i, j, c.x, c.y);
  c.tissue = tissue_field(c.x, c.y) > tissue_thr;
  c.tumour = c.tissue && nest_field(c.x, c.y) > nest_thr;
  if (c.tumour) {
    const std::uint64_t h = hash_ij(k_attr, i, j);
    c.cls = static_cast<std::uint8_t>(unit(mix64(h + 101)) < kIndividualClass ? class_from(unit(mix64(h + 102)))
                                                                               : patch_class(c.x, c.y));
  }
  return c;
}

Site Model::make_site(std::int64_t i, std::int64_t j) const {
  const SiteCore c = site_core(i, j);
  Site s;
  s.px = c.x * inv_mpp;
  s.py = c.y * inv_mpp;
  if (!c.tissue) return s;
  const std::uint64_t h = hash_ij(k_attr, i, j);
  Rng r{h};
  s.key = static_cast<std::uint32_t>(h >> 32);
  // Half the distance to the nearest lattice neighbour bounds the nucleus.
  double hmin = 1e9;
  {
    const std::int64_t shift = (j & 1) ? 0 : -1;
    const std::int64_t nb[6][2] = {{i - 1, j}, {i + 1, j}, {i + shift, j - 1}, {i + shift + 1, j - 1},
                                   {i + shift, j + 1}, {i + shift + 1, j + 1}};
    for (const auto& n : nb) {
      double nx = 0, ny = 0;
      lattice_position(n[0], n[1], nx, ny);
      hmin = std::min(hmin, 0.5 * std::hypot(nx - c.x, ny - c.y));
    }
  }
  double A = 0, B = 0, theta = 0, off = 0, hn = 0;
  if (c.tumour) {
    s.kind = kTumour;
    s.cls = c.cls;
    s.R = static_cast<float>(r.range(7.5, 8.5) * inv_mpp);
    A = r.range(3.0, 4.5);
    B = A * r.range(0.68, 0.98);
    A = std::min(A, std::max(2.4, 0.86 * hmin - 0.3));
    B = std::min(B, A);
    theta = r.range(0.0, 6.283185307);
    off = r.range(0.0, 0.7);
    hn = r.range(0.5, 0.9);
    s.hc = static_cast<float>(r.range(0.05, 0.10));
    const MembraneClass& mc = kMembrane[c.cls];
    if (mc.peak > 0) {
      const double sig = std::sqrt(std::pow(mc.fwhm_um / 2.3548, 2) + kPsfSigmaUm * kPsfSigmaUm) * inv_mpp;
      s.peak = static_cast<float>(mc.peak * r.range(0.88, 1.12));
      s.inv2s2 = static_cast<float>(1.0 / (2.0 * sig * sig));
      s.cut = static_cast<float>(kCutSigmas * sig);
      const double a1 = r.range(0.0, 6.283185307), a2 = r.range(0.0, 6.283185307);
      const double amp = c.cls == 1 ? 0.05 : 0.07;
      s.m1x = static_cast<float>(amp * std::cos(a1));
      s.m1y = static_cast<float>(amp * std::sin(a1));
      s.m2x = static_cast<float>(std::cos(a2));
      s.m2y = static_cast<float>(std::sin(a2));
      s.m2a = static_cast<float>(r.range(-0.05, 0.05));
      if (c.cls == 1) {
        // 30-60 % of the outline in 1-3 arcs separated by random gaps.
        const int n = 1 + std::min(2, static_cast<int>(r.next() * 3.0));
        const double complete = r.range(0.30, 0.60);
        double wa[3], wg[3], sa = 0, sg = 0;
        for (int k = 0; k < n; ++k) {
          wa[k] = r.range(0.5, 1.5);
          wg[k] = r.range(0.5, 1.5);
          sa += wa[k];
          sg += wg[k];
        }
        double angle = r.range(0.0, 6.283185307);
        s.narcs = static_cast<std::uint8_t>(n);
        for (int k = 0; k < n; ++k) {
          const double frac = complete * wa[k] / sa;         // share of the full circle
          const double half = frac * 3.14159265358979;       // half-angle
          const double centre = angle + half;
          s.ax[k] = static_cast<float>(std::cos(centre));
          s.ay[k] = static_cast<float>(std::sin(centre));
          s.acos_[k] = static_cast<float>(std::cos(half));
          s.aramp[k] = static_cast<float>(1.0 / std::max(0.02, 0.25 * std::sin(half)));
          angle += 2.0 * half + (1.0 - complete) * 6.283185307 * wg[k] / sg;
        }
      }
    }
  } else {
    const double u = r.next();
    if (u < 0.16) {
      s.kind = kFibroblast;
      A = r.range(3.5, 5.5);
      B = r.range(0.8, 1.3);
      A = std::min(A, std::max(2.5, 0.95 * hmin));
      theta = fibre_angle + r.range(-0.5, 0.5);
      off = r.range(0.0, 1.0);
      hn = r.range(0.55, 0.8);
    } else if (u < 0.20) {
      s.kind = kLymphocyte;
      A = r.range(2.0, 2.6);
      B = A * r.range(0.85, 1.0);
      A = std::min(A, std::max(1.8, 0.85 * hmin));
      B = std::min(A, B);
      theta = r.range(0.0, 6.283185307);
      off = r.range(0.0, 0.8);
      hn = r.range(0.85, 1.1);
    } else {
      return s;
    }
  }
  const double oa = r.range(0.0, 6.283185307);
  s.ncx = static_cast<float>(off * std::cos(oa) * inv_mpp);
  s.ncy = static_cast<float>(off * std::sin(oa) * inv_mpp);
  const double Ap = A * inv_mpp, Bp = B * inv_mpp;
  const double ct = std::cos(theta), st = std::sin(theta);
  s.qa = static_cast<float>(ct * ct / (Ap * Ap) + st * st / (Bp * Bp));
  s.qb = static_cast<float>(2.0 * ct * st * (1.0 / (Ap * Ap) - 1.0 / (Bp * Bp)));
  s.qc = static_cast<float>(st * st / (Ap * Ap) + ct * ct / (Bp * Bp));
  s.edge = static_cast<float>(std::min(0.3, 0.35 / B));
  s.hn = static_cast<float>(hn);
  return s;
}

// ---------------------------------------------------------------- rendering

inline float smooth01(float t) {
  t = std::clamp(t, 0.0f, 1.0f);
  return t * t * (3.0f - 2.0f * t);
}

struct Renderer {
  const Model& m;
  explicit Renderer(const Model& model) : m(model) {}

  // Sites around a rectangle, lattice-indexed.
  struct SiteWindow {
    std::int64_t i0 = 0, i1 = -1, j0 = 0, j1 = -1;
    std::vector<Site> sites;
    const Site& at(std::int64_t i, std::int64_t j) const {
      return sites[static_cast<std::size_t>((j - j0) * (i1 - i0 + 1) + (i - i0))];
    }
  };

  // Slow fields on the coarse global grid (points at multiples of grid_px).
  struct Grid {
    std::int64_t gx0 = 0, gy0 = 0;
    int nx = 0, ny = 0;
    std::vector<float> tissue, wx, wy;
    std::size_t idx(std::int64_t gx, std::int64_t gy) const {
      return static_cast<std::size_t>((gy - gy0) * nx + (gx - gx0));
    }
  };

  static std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
  }

  // Renders level-0 pixels [x0, x0 + w) x [y0, y0 + h) into `out` (RGB, row stride `stride`).
  void render(std::int64_t x0, std::int64_t y0, int w, int h, std::uint8_t* out, std::size_t stride) const {
    const double mpp = m.mpp;
    // Sites.
    SiteWindow win;
    const double reach = static_cast<double>(m.search_px) + 2.0 * m.block_px;
    m.lattice_range((static_cast<double>(x0) - reach) * mpp, (static_cast<double>(y0) - reach) * mpp,
                    (static_cast<double>(x0 + w) + reach) * mpp, (static_cast<double>(y0 + h) + reach) * mpp, win.i0,
                    win.i1, win.j0, win.j1);
    win.sites.reserve(static_cast<std::size_t>((win.i1 - win.i0 + 1) * (win.j1 - win.j0 + 1)));
    for (std::int64_t j = win.j0; j <= win.j1; ++j)
      for (std::int64_t i = win.i0; i <= win.i1; ++i) win.sites.push_back(m.make_site(i, j));
    // Coarse grid, covering every whole block the region touches.
    const int G = m.grid_px, B = m.block_px;
    const std::int64_t bx_begin = floor_div(x0, B) * B, by_begin = floor_div(y0, B) * B;
    const std::int64_t bx_end = floor_div(x0 + w - 1, B) * B + B, by_end = floor_div(y0 + h - 1, B) * B + B;
    Grid grid;
    grid.gx0 = floor_div(bx_begin, G);
    grid.gy0 = floor_div(by_begin, G);
    const std::int64_t gx1 = floor_div(bx_end, G) + 1, gy1 = floor_div(by_end, G) + 1;
    grid.nx = static_cast<int>(gx1 - grid.gx0 + 1);
    grid.ny = static_cast<int>(gy1 - grid.gy0 + 1);
    const auto gn = static_cast<std::size_t>(grid.nx) * static_cast<std::size_t>(grid.ny);
    grid.tissue.resize(gn);
    grid.wx.resize(gn);
    grid.wy.resize(gn);
    for (std::int64_t gy = grid.gy0; gy <= gy1; ++gy)
      for (std::int64_t gx = grid.gx0; gx <= gx1; ++gx) {
        const double xu = static_cast<double>(gx * G) * mpp, yu = static_cast<double>(gy * G) * mpp;
        const std::size_t k = grid.idx(gx, gy);
        grid.tissue[k] = static_cast<float>(m.tissue_field(xu, yu) - m.tissue_thr);
        grid.wx[k] = static_cast<float>(m.warp(xu, yu, 0));
        grid.wy[k] = static_cast<float>(m.warp(xu, yu, 1));
      }
    // Blocks on the global block grid.
    for (std::int64_t by = by_begin; by < by_end; by += B)
      for (std::int64_t bx = bx_begin; bx < bx_end; bx += B) {
        const std::int64_t cx0 = std::max(bx, x0), cx1 = std::min(bx + B, x0 + w);
        const std::int64_t cy0 = std::max(by, y0), cy1 = std::min(by + B, y0 + h);
        render_block(win, grid, bx, by, cx0, cy0, cx1, cy1,
                     out + static_cast<std::size_t>(cy0 - y0) * stride + static_cast<std::size_t>(cx0 - x0) * 3,
                     stride);
      }
  }

  static constexpr int kMaxCand = 48;
  static constexpr int kMaxBlockPx = 32;
  static constexpr int kMaxLines = 24;

  struct Cand {
    float x, y;       // block-local pixel units
    float mind, maxd;
    const Site* s;
  };
  struct MemCand {
    float x, y;
    const Site* s;
    bool radial;
    int nlines;
    float nx[kMaxLines], ny[kMaxLines], c[kMaxLines];
  };

  void render_block(const SiteWindow& win, const Grid& grid, std::int64_t bx, std::int64_t by, std::int64_t cx0,
                    std::int64_t cy0, std::int64_t cx1, std::int64_t cy1, std::uint8_t* out,
                    std::size_t stride) const {
    const int B = m.block_px;
    const double mpp = m.mpp;
    const auto fB = static_cast<float>(B);
    // Sites near the whole (global) block: the selection never depends on the clip.
    std::int64_t i0, i1, j0, j1;
    const double reach = static_cast<double>(m.search_px);
    m.lattice_range((static_cast<double>(bx) - reach) * mpp, (static_cast<double>(by) - reach) * mpp,
                    (static_cast<double>(bx + B) + reach) * mpp, (static_cast<double>(by + B) + reach) * mpp, i0, i1,
                    j0, j1);
    assert(i0 >= win.i0 && i1 <= win.i1 && j0 >= win.j0 && j1 <= win.j1);
    i0 = std::max(i0, win.i0);
    i1 = std::min(i1, win.i1);
    j0 = std::max(j0, win.j0);
    j1 = std::min(j1, win.j1);
    Cand all[160];
    int nall = 0;
    float D = std::numeric_limits<float>::max();
    // Pixel centres of the block span [0.5, B - 0.5].
    const float lo = 0.5f, hi = fB - 0.5f;
    for (std::int64_t j = j0; j <= j1; ++j)
      for (std::int64_t i = i0; i <= i1; ++i) {
        const Site& s = win.at(i, j);
        const auto x = static_cast<float>(s.px - static_cast<double>(bx));
        const auto y = static_cast<float>(s.py - static_cast<double>(by));
        const float ex = std::max(std::max(lo - x, x - hi), 0.0f);
        const float ey = std::max(std::max(lo - y, y - hi), 0.0f);
        const float mind = std::sqrt(ex * ex + ey * ey);
        if (mind > m.search_px || nall >= 160) continue;
        const float fx = std::max(std::abs(x - lo), std::abs(x - hi));
        const float fy = std::max(std::abs(y - lo), std::abs(y - hi));
        const float maxd = std::sqrt(fx * fx + fy * fy);
        D = std::min(D, maxd);
        all[nall++] = {x, y, mind, maxd, &s};
      }
    // Candidates: possible nearest sites, and sites whose membrane may reach the block.
    Cand cand[kMaxCand];
    int nc = 0;
    Cand nearc[kMaxCand];
    int nn = 0;
    bool any_tumour = false;
    for (int k = 0; k < nall; ++k) {
      if (all[k].mind <= D + m.margin_px && nc < kMaxCand) {
        cand[nc++] = all[k];
        if (all[k].s->kind == kTumour && all[k].s->peak > 0) any_tumour = true;
      }
      if (all[k].mind <= D && nn < kMaxCand) {
        nearc[nn++] = all[k];
        if (all[k].s->kind == kTumour) any_tumour = true;
      }
    }
    // Membrane candidates with their bisector lines (only lines that can matter here).
    MemCand mem[8];
    int nm = 0;
    for (int a = 0; a < nc && nm < 8; ++a) {
      const Site* s = cand[a].s;
      if (s->kind != kTumour || s->peak <= 0) continue;
      const float cut = s->cut;
      MemCand& mc = mem[nm];
      mc.x = cand[a].x;
      mc.y = cand[a].y;
      mc.s = s;
      mc.nlines = 0;
      float lb = cand[a].mind - s->R, ub = cand[a].maxd - s->R;
      mc.radial = ub > -cut;
      for (int b = 0; b < nc; ++b) {
        if (b == a) continue;
        const float dx = cand[b].x - mc.x, dy = cand[b].y - mc.y;
        const float len = std::sqrt(dx * dx + dy * dy);
        if (len < 1e-3f) continue;
        const float nx = dx / len, ny = dy / len;
        const float c = nx * 0.5f * (cand[b].x + mc.x) + ny * 0.5f * (cand[b].y + mc.y);
        const float v00 = nx * lo + ny * lo - c, v10 = nx * hi + ny * lo - c;
        const float v01 = nx * lo + ny * hi - c, v11 = nx * hi + ny * hi - c;
        const float vmin = std::min(std::min(v00, v10), std::min(v01, v11));
        const float vmax = std::max(std::max(v00, v10), std::max(v01, v11));
        lb = std::max(lb, vmin);
        ub = std::max(ub, vmax);
        if (vmax <= -cut) continue;  // never the maximum where the membrane shows
        if (mc.nlines >= kMaxLines) continue;  // (never seen: a handful of lines is typical)
        mc.nx[mc.nlines] = nx;
        mc.ny[mc.nlines] = ny;
        mc.c[mc.nlines] = c;
        ++mc.nlines;
      }
      if (lb >= cut || ub <= -cut) continue;
      ++nm;
    }
    // Tissue weight bounds over the block.
    const auto gxa = floor_div(bx, m.grid_px), gxb = floor_div(bx + B, m.grid_px) + 1;
    const auto gya = floor_div(by, m.grid_px), gyb = floor_div(by + B, m.grid_px) + 1;
    float tmax = -1e9f;
    for (std::int64_t gy = gya; gy <= gyb; ++gy)
      for (std::int64_t gx = gxa; gx <= gxb; ++gx) {
        assert(gx >= grid.gx0 && gy >= grid.gy0 && gx - grid.gx0 < grid.nx && gy - grid.gy0 < grid.ny);
        tmax = std::max(tmax, grid.tissue[grid.idx(gx, gy)]);
      }
    constexpr float kTissueSoft = 0.03f;
    const bool any_tissue = tmax > -kTissueSoft * 0.5f;

    const std::uint32_t kp = m.k_pixel;
    const int w = static_cast<int>(cx1 - cx0), h = static_cast<int>(cy1 - cy0);
    // Per-row scratch: pixel hashes, stain concentrations, tissue weight.
    alignas(32) std::uint32_t hs[kMaxBlockPx];
    alignas(32) float Hs[kMaxBlockPx], Ds[kMaxBlockPx], Ws[kMaxBlockPx];
    const bool background = !any_tumour && nm == 0 && !any_tissue;

    const float inv_G = 1.0f / static_cast<float>(m.grid_px);
    const auto mppf = static_cast<float>(mpp);
    const float fc = m.fibre_c, fs = m.fibre_s;
    const auto bxu = static_cast<float>(static_cast<double>(bx) * mpp);
    const auto byu = static_cast<float>(static_cast<double>(by) * mpp);
    const float chrom_scale = mppf / 0.55f;
    const float wob_scale = mppf / 1.6f;
    for (int yy = 0; yy < h; ++yy) {
      const std::int64_t gyp = cy0 + yy;
      pixel_hashes(cx0, gyp, w, kp, hs);
      if (background) {
        for (int xx = 0; xx < w; ++xx) Hs[xx] = Ds[xx] = Ws[xx] = 0.0f;
        colour_row(hs, Hs, Ds, Ws, w, out + static_cast<std::size_t>(yy) * stride);
        continue;
      }
      const float py = static_cast<float>(gyp - by) + 0.5f;
      // Coarse-grid row interpolation.
      const std::int64_t gky = floor_div(gyp, m.grid_px);
      const float gfy = (static_cast<float>(gyp - gky * m.grid_px) + 0.5f) * inv_G;
      for (int xx = 0; xx < w; ++xx) {
        const std::int64_t gxp = cx0 + xx;
        const float px = static_cast<float>(gxp - bx) + 0.5f;
        const std::uint32_t hsh = hs[xx];
        float H = 0, Dab = 0, wt = 0;
        // Nearest site.
        int best = 0;
        float bd2 = std::numeric_limits<float>::max();
        for (int k = 0; k < nn; ++k) {
          const float dx = px - nearc[k].x, dy = py - nearc[k].y;
          const float d2 = dx * dx + dy * dy;
          if (d2 < bd2) {
            bd2 = d2;
            best = k;
          }
        }
        const Site* ns = nn > 0 ? nearc[best].s : nullptr;
        const bool in_cell = ns && ns->kind == kTumour && bd2 <= ns->R * ns->R;
        if (in_cell) {
          wt = 1.0f;
          H = ns->hc * (0.9f + 0.2f * static_cast<float>(hsh >> 24) * (1.0f / 256.0f));
        } else if (any_tissue) {
          const std::int64_t gkx = floor_div(gxp, m.grid_px);
          const float gfx = (static_cast<float>(gxp - gkx * m.grid_px) + 0.5f) * inv_G;
          const std::size_t k00 = grid.idx(gkx, gky);
          const std::size_t k01 = k00 + static_cast<std::size_t>(grid.nx);
          const float t0 = grid.tissue[k00] + (grid.tissue[k00 + 1] - grid.tissue[k00]) * gfx;
          const float t1 = grid.tissue[k01] + (grid.tissue[k01 + 1] - grid.tissue[k01]) * gfx;
          const float t = t0 + (t1 - t0) * gfy;
          wt = std::min(std::max(t * (1.0f / kTissueSoft) + 0.5f, 0.0f), 1.0f);
          if (wt > 0) {
            const float w0 = grid.wx[k00] + (grid.wx[k00 + 1] - grid.wx[k00]) * gfx;
            const float w1 = grid.wx[k01] + (grid.wx[k01 + 1] - grid.wx[k01]) * gfx;
            const float v0 = grid.wy[k00] + (grid.wy[k00 + 1] - grid.wy[k00]) * gfx;
            const float v1 = grid.wy[k01] + (grid.wy[k01 + 1] - grid.wy[k01]) * gfx;
            const float xw = bxu + px * mppf + w0 + (w1 - w0) * gfy;
            const float yw = byu + py * mppf + v0 + (v1 - v0) * gfy;
            const float fu = (fc * xw + fs * yw) * (1.0f / 6.0f);
            const float fv = (-fs * xw + fc * yw) * (1.0f / 1.1f);
            const float f = m.texture(fu, fv, m.k_fibre);
            H = wt * (0.02f + 0.06f * f * f);
          }
        }
        // Nucleus of the nearest site.
        if (ns && ns->kind != kEmpty && (in_cell || (ns->kind != kTumour && wt > 0))) {
          const float dx = px - nearc[best].x - ns->ncx, dy = py - nearc[best].y - ns->ncy;
          const float q = ns->qa * dx * dx + ns->qb * dx * dy + ns->qc * dy * dy;
          const float lim = 1.0f + ns->edge + 0.12f;
          if (q < lim * lim) {
            float rho = std::sqrt(q);
            // Irregular outline: the radius wobbles by up to +-0.11 near the edge.
            if (rho > 0.88f - ns->edge) rho += 0.22f * (m.texture(dx * wob_scale, dy * wob_scale, ns->key) - 0.5f);
            const float t = 1.0f - smooth01((rho - (1.0f - ns->edge)) / (2.0f * ns->edge));
            if (t > 0) {
              float hn = ns->hn;
              if (ns->kind == kTumour) {
                const float chrom = m.texture(dx * chrom_scale, dy * chrom_scale, ns->key ^ 0xA5A5A5A5u);
                hn *= 0.70f + 0.55f * chrom;
                if (rho > 0.72f) hn *= 1.0f + 0.6f * (rho - 0.72f);
              } else {
                hn *= 0.9f + 0.2f * m.texture(dx * chrom_scale, dy * chrom_scale, ns->key);
              }
              H += t * (std::max(hn, H) - H);
              wt = std::max(wt, t);
            }
          }
        }
        // Membranes: the strongest nearby outline (a shared edge shows the stronger cell).
        for (int k = 0; k < nm; ++k) {
          const MemCand& mc = mem[k];
          const Site* s = mc.s;
          float sd = -1e30f;
          for (int l = 0; l < mc.nlines; ++l) sd = std::max(sd, mc.nx[l] * px + mc.ny[l] * py - mc.c[l]);
          if (sd >= s->cut) continue;
          const float dx = px - mc.x, dy = py - mc.y;
          const float d2 = dx * dx + dy * dy;
          if (mc.radial) {
            const float rmin = s->R - s->cut;
            if (d2 > rmin * rmin) sd = std::max(sd, std::sqrt(d2) - s->R);
          }
          if (sd >= s->cut || sd <= -s->cut) continue;
          const float r = std::sqrt(d2);
          const float z = sd * sd * s->inv2s2 * (static_cast<float>(kExpLutSize) / kExpLutMax);
          float v = s->peak * m.exp_lut[static_cast<int>(z + 0.5f)];
          const float ir = 1.0f / (r + 1e-3f);
          const float ux = dx * ir, uy = dy * ir;
          if (s->narcs) {
            float arc = 0;
            for (int a = 0; a < s->narcs; ++a) {
              const float cosang = ux * s->ax[a] + uy * s->ay[a];
              arc = std::max(arc, std::min(std::max((cosang - s->acos_[a]) * s->aramp[a] + 0.5f, 0.0f), 1.0f));
            }
            v *= arc;
          }
          const float c2 = ux * s->m2x + uy * s->m2y;
          v *= 1.0f + ux * s->m1x + uy * s->m1y + s->m2a * (2.0f * c2 * c2 - 1.0f);
          Dab = std::max(Dab, v);
        }
        if (Dab > 0) {
          Dab *= 0.92f + 0.16f * static_cast<float>((hsh >> 12) & 0xFFu) * (1.0f / 255.0f);
          wt = std::max(wt, std::min(1.0f, Dab * 20.0f));
        }
        Hs[xx] = std::min(H, 3.0f);
        Ds[xx] = std::min(Dab, 3.0f);
        Ws[xx] = wt;
      }
      colour_row(hs, Hs, Ds, Ws, w, out + static_cast<std::size_t>(yy) * stride);
    }
  }

  // Deterministic per-pixel hashes of one row (vectorisable).
  static void pixel_hashes(std::int64_t x0, std::int64_t y, int w, std::uint32_t key, std::uint32_t* hs) {
    const std::uint32_t ky = static_cast<std::uint32_t>(y) * 0x85EBCA77u ^ key;
    const auto ux0 = static_cast<std::uint32_t>(x0);
    for (int xx = 0; xx < w; ++xx) hs[xx] = hash32((ux0 + static_cast<std::uint32_t>(xx)) * 0x9E3779B1u ^ ky);
  }

  // Beer-Lambert and sensor noise for one row: I = 240 * 10^-OD (* luminance noise) + chroma noise.
  void colour_row(const std::uint32_t* hs, const float* Hs, const float* Ds, const float* Ws, int w,
                  std::uint8_t* o) const {
    alignas(32) std::int32_t v[3][kMaxBlockPx];
    for (int c = 0; c < 3; ++c) {
      const float hc = m.hv[c], dc = m.dv[c], rc = m.residual[c];
      const int shift = 16 + 5 * c;
      for (int xx = 0; xx < w; ++xx) {
        const std::uint32_t hsh = hs[xx];
        const float nl = static_cast<float>(static_cast<std::int32_t>(hsh & 0xFFu) +
                                            static_cast<std::int32_t>((hsh >> 8) & 0xFFu) - 255) *
                         (3.0f / 255.0f);
        const float nc = static_cast<float>(static_cast<std::int32_t>((hsh >> shift) & 31u) - 15) * (0.8f / 15.0f);
        const float od = Hs[xx] * hc + Ds[xx] * dc + Ws[xx] * rc;  // 0 .. ~6 (concentrations <= 3)
        // Noise scales with the intensity, so the value stays in [0, 240 + 3.8 + 0.5].
        const float val = exp2_neg(od * -3.32192809f) * (kI0 + nl + nc) + 0.5f;
        v[c][xx] = static_cast<std::int32_t>(val);
      }
    }
    for (int xx = 0; xx < w; ++xx) {
      o[3 * xx + 0] = static_cast<std::uint8_t>(v[0][xx]);
      o[3 * xx + 1] = static_cast<std::uint8_t>(v[1][xx]);
      o[3 * xx + 2] = static_cast<std::uint8_t>(v[2][xx]);
    }
  }

  // 2^x for -30 < x <= 0, relative error below 2e-4; branch-free so loops vectorise.
  static float exp2_neg(float x) {
    const float y = x + 32.0f;                   // (2, 32]: truncation is floor
    const auto i = static_cast<std::int32_t>(y);
    const float f = y - static_cast<float>(i);   // [0, 1)
    const float p =
        1.0f + f * (0.69314718f + f * (0.24022651f + f * (0.05550411f + f * (0.00961813f + f * 0.00133336f))));
    const float scale = std::bit_cast<float>(static_cast<std::uint32_t>(i + 95) << 23);  // 2^(i - 32)
    return p * scale;
  }
};

int resolve_threads(int threads) {
  // Capped at the cores, as the engine's worker_threads: oneTBB warns about workers it refuses.
  const int cores = std::max(1, tbb::info::default_concurrency());
  return threads > 0 ? std::min(threads, cores) : cores;
}

scoring::CellCounts count_cells(const Model& m, int threads) {
  std::int64_t i0, i1, j0, j1;
  m.lattice_range(0, 0, m.width_um, m.height_um, i0, i1, j0, j1);
  const auto rows = static_cast<std::size_t>(j1 - j0 + 1);
  std::vector<scoring::CellCounts> per_row(rows);
  const double W = static_cast<double>(m.o.width), Hh = static_cast<double>(m.o.height);
  tbb::task_arena arena(resolve_threads(threads));
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, rows), [&](const tbb::blocked_range<std::size_t>& r) {
      for (std::size_t row = r.begin(); row != r.end(); ++row) {
        const std::int64_t j = j0 + static_cast<std::int64_t>(row);
        scoring::CellCounts& cc = per_row[row];
        for (std::int64_t i = i0; i <= i1; ++i) {
          const SiteCore c = m.site_core(i, j);
          if (!c.tumour) continue;
          const double px = c.x * m.inv_mpp, py = c.y * m.inv_mpp;
          if (px < 0 || py < 0 || px >= W || py >= Hh) continue;
          ++cc.by_class[c.cls];
        }
      }
    });
  });
  scoring::CellCounts total;
  for (const auto& c : per_row) total += c;
  return total;
}

SynthTruth make_truth(const Model& m, const scoring::CellCounts& counts) {
  SynthTruth t;
  t.options = m.o;
  t.counts = counts;
  t.percent = counts.percent();
  t.score_2018 = scoring::score_from_percent(t.percent, counts.total(), scoring::Guideline::AscoCap2018);
  t.score_2007 = scoring::score_from_percent(t.percent, counts.total(), scoring::Guideline::AscoCap2007);
  t.category_2018 = scoring::categorise(t.score_2018, t.percent);
  t.tissue_fraction_target = m.tissue_target;
  t.tumour_fraction_target = m.tumour_target;
  return t;
}

void render_into(const Model& m, std::int64_t x, std::int64_t y, cv::Mat& out, int threads) {
  constexpr int kChunk = 256;
  const std::int64_t cx0 = Renderer::floor_div(x, kChunk), cy0 = Renderer::floor_div(y, kChunk);
  const std::int64_t cx1 = Renderer::floor_div(x + out.cols - 1, kChunk);
  const std::int64_t cy1 = Renderer::floor_div(y + out.rows - 1, kChunk);
  const std::int64_t nx = cx1 - cx0 + 1, n = nx * (cy1 - cy0 + 1);
  Renderer r(m);
  tbb::task_arena arena(resolve_threads(threads));
  arena.execute([&] {
    tbb::parallel_for(std::int64_t{0}, n, [&](std::int64_t k) {
      const std::int64_t tx = (cx0 + k % nx) * kChunk, ty = (cy0 + k / nx) * kChunk;
      const std::int64_t rx0 = std::max(tx, x), ry0 = std::max(ty, y);
      const std::int64_t rx1 = std::min(tx + kChunk, x + out.cols), ry1 = std::min(ty + kChunk, y + out.rows);
      if (rx1 <= rx0 || ry1 <= ry0) return;
      r.render(rx0, ry0, static_cast<int>(rx1 - rx0), static_cast<int>(ry1 - ry0),
               out.ptr<std::uint8_t>(static_cast<int>(ry0 - y)) + (rx0 - x) * 3, out.step[0]);
    });
  });
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

// ---------------------------------------------------------------- public API

std::vector<double> parse_number_list(const std::string& text, std::size_t count, const std::string& option) {
  std::vector<double> values;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const std::string t = trim(item);
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (t.empty() || used != t.size() || !std::isfinite(v))
      throw std::invalid_argument(option + ": '" + t + "' is not a number (expected " + std::to_string(count) +
                                  " comma-separated numbers)");
    values.push_back(v);
  }
  if (!text.empty() && text.back() == ',') values.push_back(std::nan(""));
  if (values.size() != count)
    throw std::invalid_argument(option + ": expected " + std::to_string(count) + " comma-separated numbers, got '" +
                                text + "'");
  return values;
}

SynthOptions normalise_synth_options(const SynthOptions& in) {
  SynthOptions o = in;
  constexpr std::int64_t kMaxSide = 1000000;
  if (o.width < 256 || o.height < 256)
    throw std::invalid_argument("--width/--height: the slide must be at least 256 x 256 pixels (got " +
                                std::to_string(o.width) + " x " + std::to_string(o.height) + ")");
  if (o.width > kMaxSide || o.height > kMaxSide)
    throw std::invalid_argument("--width/--height: at most " + std::to_string(kMaxSide) + " pixels a side (got " +
                                std::to_string(o.width) + " x " + std::to_string(o.height) + ")");
  if (!(std::abs(o.mpp - 0.25) < 1e-9 || std::abs(o.mpp - 0.5) < 1e-9))
    throw std::invalid_argument("--mpp: must be 0.25 (40x) or 0.5 (20x)");
  o.mpp = std::abs(o.mpp - 0.25) < 1e-9 ? 0.25 : 0.5;
  double sum = 0;
  for (double v : o.mix) {
    if (!std::isfinite(v) || v < 0)
      throw std::invalid_argument("--mix: fractions must be finite and not negative");
    sum += v;
  }
  if (!(sum > 0)) throw std::invalid_argument("--mix: at least one fraction must be positive");
  for (double& v : o.mix) v /= sum;
  if (o.quality < 1 || o.quality > 100) throw std::invalid_argument("--quality: must be 1..100");
  if (o.tile != 240 && o.tile != 256) throw std::invalid_argument("--tile: must be 240 or 256");
  if (o.threads < 0) throw std::invalid_argument("--threads: must be 0 (all cores) or more");
  auto unit_vector = [](std::array<double, 3>& v, const char* name) {
    double n = 0;
    for (double c : v) {
      if (!std::isfinite(c) || c < 0)
        throw std::invalid_argument(std::string(name) + ": optical densities must be finite and not negative");
      n += c * c;
    }
    n = std::sqrt(n);
    if (!(n > 1e-6)) throw std::invalid_argument(std::string(name) + ": the vector must not be zero");
    for (double& c : v) c /= n;
  };
  unit_vector(o.stain_h, "--stain-h");
  unit_vector(o.stain_dab, "--stain-dab");
  const auto& a = o.stain_h;
  const auto& b = o.stain_dab;
  const double cx = a[1] * b[2] - a[2] * b[1], cy = a[2] * b[0] - a[0] * b[2], cz = a[0] * b[1] - a[1] * b[0];
  if (std::sqrt(cx * cx + cy * cy + cz * cz) < 0.05)
    throw std::invalid_argument("--stain-h/--stain-dab: the two stain vectors are (nearly) parallel");
  return o;
}

SynthTruth compute_synth_truth(const SynthOptions& options) {
  const Model m(normalise_synth_options(options));
  return make_truth(m, count_cells(m, m.o.threads));
}

cv::Mat render_synth_region(const SynthOptions& options, std::int64_t x, std::int64_t y, int w, int h) {
  if (w <= 0 || h <= 0) throw std::invalid_argument("render_synth_region: empty region");
  const Model m(normalise_synth_options(options));
  cv::Mat out(h, w, CV_8UC3);
  render_into(m, x, y, out, m.o.threads);
  return out;
}

std::vector<SynthCell> synth_cells_in(const SynthOptions& options, std::int64_t x, std::int64_t y, std::int64_t w,
                                      std::int64_t h) {
  const Model m(normalise_synth_options(options));
  std::int64_t i0, i1, j0, j1;
  m.lattice_range(static_cast<double>(x) * m.mpp, static_cast<double>(y) * m.mpp, static_cast<double>(x + w) * m.mpp,
                  static_cast<double>(y + h) * m.mpp, i0, i1, j0, j1);
  std::vector<SynthCell> cells;
  for (std::int64_t j = j0; j <= j1; ++j)
    for (std::int64_t i = i0; i <= i1; ++i) {
      const SiteCore c = m.site_core(i, j);
      if (!c.tumour) continue;
      const double px = c.x * m.inv_mpp, py = c.y * m.inv_mpp;
      if (px < static_cast<double>(x) || py < static_cast<double>(y) || px >= static_cast<double>(x + w) ||
          py >= static_cast<double>(y + h))
        continue;
      cells.push_back({px, py, static_cast<scoring::CellClass>(c.cls)});
    }
  return cells;
}

tiling::PyramidOptions synth_pyramid_options(const SynthOptions& options) {
  const SynthOptions o = normalise_synth_options(options);
  tiling::PyramidOptions po;
  po.width = o.width;
  po.height = o.height;
  po.tile = o.tile;
  po.quality = o.quality;
  po.mpp = o.mpp;
  po.app_mag = o.mpp < 0.375 ? 40 : 20;
  po.extra_properties =
      std::string("|Generator = ihcscore synth ") + kSynthGeneratorVersion + "|Seed = " + std::to_string(o.seed);
  return po;
}

SynthTruth write_synthetic_slide(const std::filesystem::path& out, const SynthOptions& options, const SynthProgress& progress) {
  const Model m(normalise_synth_options(options));
  const int threads = resolve_threads(m.o.threads);
  SynthTruth truth = make_truth(m, count_cells(m, threads));

  tiling::PyramidWriter writer(out, synth_pyramid_options(m.o));
  truth.levels = writer.levels();

  const std::int64_t bands = writer.band_count();
  const std::int64_t across = writer.tiles_across();
  const int T = m.o.tile;
  std::atomic<std::int64_t> tiles_done{0};
  Renderer renderer(m);
  tbb::task_arena arena(threads);
  // Two band buffers: band b renders into one while band b - 1 is encoded from the other.
  cv::Mat buffers[2] = {cv::Mat(T, static_cast<int>(m.o.width), CV_8UC3),
                        cv::Mat(T, static_cast<int>(m.o.width), CV_8UC3)};
  std::future<void> pending;
  try {
    for (std::int64_t b = 0; b < bands; ++b) {
      const int bh = writer.band_height(b);
      const std::int64_t y0 = b * T;
      const cv::Mat band = buffers[b % 2].rowRange(0, bh);
      arena.execute([&] {
        tbb::parallel_for(std::int64_t{0}, across, [&](std::int64_t c) {
          const std::int64_t x0 = c * T;
          const int tw = static_cast<int>(std::min<std::int64_t>(T, m.o.width - x0));
          renderer.render(x0, y0, tw, bh, band.data + x0 * 3, band.step[0]);
          if (progress) progress(++tiles_done, bands * across);
        });
      });
      if (pending.valid()) pending.get();  // band b - 1 is written: its buffer is free again
      pending = std::async(std::launch::async, [&writer, band] { writer.write_band(band); });
    }
    if (pending.valid()) pending.get();
  } catch (...) {
    if (pending.valid()) pending.wait();
    throw;
  }
  writer.finish();
  return truth;
}

nlohmann::json to_json(const SynthTruth& t) {
  using nlohmann::json;
  const auto& o = t.options;
  json levels = json::array();
  for (const auto& l : t.levels) levels.push_back({{"width", l.width}, {"height", l.height}, {"downsample", l.downsample}});
  json j;
  j["generator"] = "ihcscore synth";
  j["generator_version"] = kSynthGeneratorVersion;
  j["width"] = o.width;
  j["height"] = o.height;
  j["mpp"] = o.mpp;
  j["app_mag"] = o.mpp < 0.375 ? 40 : 20;
  j["seed"] = o.seed;
  j["mix"] = {o.mix[0], o.mix[1], o.mix[2], o.mix[3]};
  j["quality"] = o.quality;
  j["tile"] = o.tile;
  j["stain_h"] = {o.stain_h[0], o.stain_h[1], o.stain_h[2]};
  j["stain_dab"] = {o.stain_dab[0], o.stain_dab[1], o.stain_dab[2]};
  if (!levels.empty()) j["levels"] = levels;
  j["tissue_fraction_target"] = t.tissue_fraction_target;
  j["tumour_fraction_target"] = t.tumour_fraction_target;
  j["tumour_cells"] = t.counts.total();
  j["cells"] = {{"0", t.counts.by_class[0]},
                {"1+", t.counts.by_class[1]},
                {"2+", t.counts.by_class[2]},
                {"3+", t.counts.by_class[3]}};
  j["percent"] = {{"0", t.percent.p0},
                  {"1+", t.percent.p1},
                  {"2+", t.percent.p2},
                  {"3+", t.percent.p3},
                  {"complete", t.percent.complete()},
                  {"complete_intense", t.percent.complete_intense()}};
  j["expected_score"] = {{std::string(scoring::to_string(scoring::Guideline::AscoCap2018)),
                          std::string(scoring::to_string(t.score_2018))},
                         {std::string(scoring::to_string(scoring::Guideline::AscoCap2007)),
                          std::string(scoring::to_string(t.score_2007))}};
  j["expected_category"] = std::string(scoring::to_string(t.category_2018));
  return j;
}

}  // namespace ihc::synth
