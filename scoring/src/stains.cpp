#include "ihc/scoring/stains.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace ihc::scoring {
namespace {

std::optional<Rgb3> normalised(const Rgb3& v) {
  for (double c : v)
    if (!std::isfinite(c) || c < 0) return std::nullopt;
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (n < 1e-9) return std::nullopt;
  return Rgb3{v[0] / n, v[1] / n, v[2] / n};
}

Rgb3 cross(const Rgb3& a, const Rgb3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

// Inverse of the 3x3 matrix whose rows are the stain vectors.
cv::Matx33d inverse_stain_matrix(const StainVectors& s) {
  const cv::Matx33d m(s.hematoxylin[0], s.hematoxylin[1], s.hematoxylin[2], s.dab[0], s.dab[1],
                      s.dab[2], s.residual[0], s.residual[1], s.residual[2]);
  return m.inv();
}

}  // namespace

std::optional<StainVectors> StainVectors::make(const Rgb3& hematoxylin, const Rgb3& dab, double i0) {
  const auto h = normalised(hematoxylin);
  const auto d = normalised(dab);
  if (!h || !d || !std::isfinite(i0) || i0 <= 1.0 || i0 > 255.0) return std::nullopt;
  Rgb3 r = cross(*h, *d);
  const double n = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
  if (n < 0.05) return std::nullopt;  // under ~3 degrees apart: not separable
  // The residual of two non-negative OD vectors has mixed signs; orient it so its largest
  // component is positive (a convention only; it does not change H or DAB).
  double big = r[0];
  for (double c : r)
    if (std::abs(c) > std::abs(big)) big = c;
  const double k = (big < 0 ? -1.0 : 1.0) / n;
  StainVectors s;
  s.hematoxylin = *h;
  s.dab = *d;
  s.residual = {r[0] * k, r[1] * k, r[2] * k};
  s.i0 = i0;
  return s;
}

StainVectors StainVectors::defaults() {
  return *make({0.650, 0.704, 0.286}, {0.268, 0.570, 0.776}, 255.0);
}

std::string StainVectors::to_string() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "hematoxylin=%.6g,%.6g,%.6g;dab=%.6g,%.6g,%.6g;i0=%.6g",
                hematoxylin[0], hematoxylin[1], hematoxylin[2], dab[0], dab[1], dab[2], i0);
  return buf;
}

std::optional<Rgb3> parse_rgb3(std::string_view text) {
  Rgb3 out{};
  std::size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    const std::size_t end = i < 2 ? text.find(',', pos) : text.size();
    if (end == std::string_view::npos) return std::nullopt;
    std::string part(text.substr(pos, end - pos));
    char* stop = nullptr;
    const double v = std::strtod(part.c_str(), &stop);
    if (part.empty() || stop != part.c_str() + part.size() || !std::isfinite(v)) return std::nullopt;
    out[static_cast<std::size_t>(i)] = v;
    pos = end + 1;
  }
  return out;
}

std::optional<StainVectors> StainVectors::parse(std::string_view text) {
  std::optional<Rgb3> h, d;
  double i0 = 255.0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find(';', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = text.substr(pos, end - pos);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "hematoxylin") h = parse_rgb3(value);
    else if (key == "dab") d = parse_rgb3(value);
    else if (key == "i0") {
      std::string v(value);
      char* stop = nullptr;
      i0 = std::strtod(v.c_str(), &stop);
      if (v.empty() || stop != v.c_str() + v.size()) return std::nullopt;
    } else return std::nullopt;
    pos = end + 1;
  }
  if (!h || !d) return std::nullopt;
  return make(*h, *d, i0);
}

std::array<float, 256> optical_density_table(double i0) {
  std::array<float, 256> od{};
  const double log_i0 = std::log10(i0);
  for (int v = 0; v < 256; ++v)
    od[static_cast<std::size_t>(v)] = static_cast<float>(std::max(0.0, log_i0 - std::log10(std::max(v, 1))));
  return od;
}

namespace {
constexpr int kDabSmoothTaps = 5;
constexpr double kDabSmoothSigma = 0.7;

// Per-channel OD tables (OD per 8-bit value: a lookup instead of a log per pixel) and the
// inverse stain matrix as floats: concentration j = sum_c OD_c * k[c][j].
struct DeconvolutionTables {
  std::array<float, 256> od;
  float k[3][3];
  explicit DeconvolutionTables(const StainVectors& stains) : od(optical_density_table(stains.i0)) {
    const cv::Matx33d inv = inverse_stain_matrix(stains);
    for (int c = 0; c < 3; ++c)
      for (int j = 0; j < 3; ++j) k[c][j] = static_cast<float>(inv(c, j));
  }
};
}  // namespace

HematoxylinDab deconvolve_for_scoring(const cv::Mat& rgb, const StainVectors& stains, double residual_weight) {
  CV_Assert(rgb.type() == CV_8UC3);
  const DeconvolutionTables t(stains);
  const auto wr = static_cast<float>(residual_weight);
  HematoxylinDab out{cv::Mat(rgb.size(), CV_32F), cv::Mat(rgb.size(), CV_32F), {}};
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* p = rgb.ptr<std::uint8_t>(y);
    auto* h = out.hematoxylin.ptr<float>(y);
    auto* d = out.dab.ptr<float>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      const float o0 = t.od[p[3 * x]], o1 = t.od[p[3 * x + 1]], o2 = t.od[p[3 * x + 2]];
      h[x] = o0 * t.k[0][0] + o1 * t.k[1][0] + o2 * t.k[2][0];
      const float r = o0 * t.k[0][2] + o1 * t.k[1][2] + o2 * t.k[2][2];
      d[x] = o0 * t.k[0][1] + o1 * t.k[1][1] + o2 * t.k[2][1] - wr * std::max(0.0f, r);
    }
  }
  return out;
}

// Built twice, for AVX2 and for any x86-64, and picked when the program starts: the row products
// run 8 floats at a time where the processor can. No FMA contraction (ISO C++ mode), so both
// give the same floats. Not under ThreadSanitizer: gcc instruments the clone resolver, which runs
// before TSan's runtime is up, and the program dies before main.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
__attribute__((target_clones("avx2", "default")))
#endif
HematoxylinDab deconvolve_for_cells(const cv::Mat& rgb, const StainVectors& stains, double residual_weight) {
  CV_Assert(rgb.type() == CV_8UC3);
  if (rgb.rows < 2 || rgb.cols < 2) {
    HematoxylinDab full = deconvolve_for_scoring(rgb, stains, residual_weight);
    full.hematoxylin = cv::Mat(std::max(1, rgb.rows / 2), std::max(1, rgb.cols / 2), CV_32F,
                               cv::Scalar(full.hematoxylin.at<float>(0, 0)));
    full.dab_smooth = smooth_dab_for_cells(full.dab);
    return full;
  }
  const DeconvolutionTables t(stains);
  const auto wr = static_cast<float>(residual_weight);
  const int cols = rgb.cols;
  HematoxylinDab out{cv::Mat(rgb.rows / 2, cols / 2, CV_32F), cv::Mat(rgb.size(), CV_32F), {}};
  // Per row: the table lookups (scalar), then the 3 x 3 products over the row (vectorised by
  // the compiler: separate arrays, no aliasing). Same operations in the same order as
  // deconvolve_for_scoring, so the same floats.
  std::vector<float> o0(static_cast<std::size_t>(cols)), o1(o0.size()), o2(o0.size());
  std::vector<float> h_rows[2] = {std::vector<float>(o0.size()), std::vector<float>(o0.size())};
  // The smoothed DAB: a ring of the last 5 DAB rows filtered along x, filtered along y as soon as
  // the rows two below a row are in (reflected at the image's edges, as BORDER_REFLECT_101).
  const bool smooth = rgb.rows >= 3 && cols >= 3;
  std::vector<float> ring[5];
  float g0 = 0, g1 = 0, g2 = 0;
  if (smooth) {
    out.dab_smooth = cv::Mat(rgb.size(), CV_32F);
    for (auto& r : ring) r.assign(o0.size(), 0.0f);
    const cv::Mat g = cv::getGaussianKernel(kDabSmoothTaps, kDabSmoothSigma, CV_32F);
    g0 = g.at<float>(2);
    g1 = g.at<float>(1);
    g2 = g.at<float>(0);
  }
  const int rows_1 = rgb.rows - 1;
  auto smooth_row = [&](int yo) {
    auto row = [&](int i) { return ring[(i < 0 ? -i : (i > rows_1 ? 2 * rows_1 - i : i)) % 5].data(); };
    const float* r0 = row(yo);
    const float* a1 = row(yo - 1);
    const float* b1 = row(yo + 1);
    const float* a2 = row(yo - 2);
    const float* b2 = row(yo + 2);
    float* o = out.dab_smooth.ptr<float>(yo);
    for (int x = 0; x < cols; ++x) o[x] = r0[x] * g0 + (a1[x] + b1[x]) * g1 + (a2[x] + b2[x]) * g2;
  };
  const float k00 = t.k[0][0], k10 = t.k[1][0], k20 = t.k[2][0];
  const float k01 = t.k[0][1], k11 = t.k[1][1], k21 = t.k[2][1];
  const float k02 = t.k[0][2], k12 = t.k[1][2], k22 = t.k[2][2];
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* p = rgb.ptr<std::uint8_t>(y);
    float* a = o0.data();
    float* b = o1.data();
    float* c = o2.data();
    for (int x = 0; x < cols; ++x) {
      a[x] = t.od[p[3 * x]];
      b[x] = t.od[p[3 * x + 1]];
      c[x] = t.od[p[3 * x + 2]];
    }
    float* h = h_rows[y & 1].data();
    float* d = out.dab.ptr<float>(y);
    for (int x = 0; x < cols; ++x) {
      h[x] = a[x] * k00 + b[x] * k10 + c[x] * k20;
      const float r = a[x] * k02 + b[x] * k12 + c[x] * k22;
      d[x] = a[x] * k01 + b[x] * k11 + c[x] * k21 - wr * std::max(0.0f, r);
    }
    if ((y & 1) == 1 && y / 2 < out.hematoxylin.rows) {
      const float* h0 = h_rows[0].data();
      const float* h1 = h_rows[1].data();
      float* o = out.hematoxylin.ptr<float>(y / 2);
      for (int x = 0; x < out.hematoxylin.cols; ++x)
        o[x] = 0.25f * (h0[2 * x] + h0[2 * x + 1] + h1[2 * x] + h1[2 * x + 1]);
    }
    if (smooth) {
      // The DAB row, filtered along x, joins the ring; the row two above is then filtered along y.
      const int cols_1 = cols - 1;
      auto at = [&](int i) { return d[i < 0 ? -i : (i > cols_1 ? 2 * cols_1 - i : i)]; };
      float* hr = ring[y % 5].data();
      for (int x : {0, 1}) hr[x] = at(x) * g0 + (at(x - 1) + at(x + 1)) * g1 + (at(x - 2) + at(x + 2)) * g2;
      for (int x = 2; x < cols - 2; ++x) hr[x] = d[x] * g0 + (d[x - 1] + d[x + 1]) * g1 + (d[x - 2] + d[x + 2]) * g2;
      for (int x : {cols - 2, cols - 1})
        hr[x] = at(x) * g0 + (at(x - 1) + at(x + 1)) * g1 + (at(x - 2) + at(x + 2)) * g2;
      if (y >= 2) smooth_row(y - 2);
    }
  }
  if (smooth) {
    smooth_row(rgb.rows - 2);
    smooth_row(rgb.rows - 1);
  } else {
    out.dab_smooth = smooth_dab_for_cells(out.dab);
  }
  return out;
}

cv::Mat smooth_dab_for_cells(const cv::Mat& dab) {
  CV_Assert(dab.type() == CV_32F);
  cv::Mat out;
  cv::GaussianBlur(dab, out, cv::Size(kDabSmoothTaps, kDabSmoothTaps), kDabSmoothSigma, 0, cv::BORDER_REFLECT_101);
  return out;
}

Deconvolved deconvolve(const cv::Mat& rgb, const StainVectors& stains) {
  CV_Assert(rgb.type() == CV_8UC3);
  const DeconvolutionTables t(stains);
  const auto& od = t.od;
  const auto& k = t.k;
  Deconvolved out{cv::Mat(rgb.size(), CV_32F), cv::Mat(rgb.size(), CV_32F), cv::Mat(rgb.size(), CV_32F)};
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* p = rgb.ptr<std::uint8_t>(y);
    auto* h = out.hematoxylin.ptr<float>(y);
    auto* d = out.dab.ptr<float>(y);
    auto* r = out.residual.ptr<float>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      const float o0 = od[p[3 * x]], o1 = od[p[3 * x + 1]], o2 = od[p[3 * x + 2]];
      h[x] = o0 * k[0][0] + o1 * k[1][0] + o2 * k[2][0];
      d[x] = o0 * k[0][1] + o1 * k[1][1] + o2 * k[2][1];
      r[x] = o0 * k[0][2] + o1 * k[1][2] + o2 * k[2][2];
    }
  }
  return out;
}

cv::Mat specific_dab(const Deconvolved& d, double residual_weight) {
  cv::Mat out(d.dab.size(), CV_32F);
  const auto w = static_cast<float>(residual_weight);
  for (int y = 0; y < out.rows; ++y) {
    const float* dab = d.dab.ptr<float>(y);
    const float* res = d.residual.ptr<float>(y);
    float* o = out.ptr<float>(y);
    for (int x = 0; x < out.cols; ++x) o[x] = dab[x] - w * std::max(0.0f, res[x]);
  }
  return out;
}

std::array<double, 3> mix_stains(const StainVectors& s, double hematoxylin, double dab, double residual) {
  std::array<double, 3> out{};
  for (std::size_t c = 0; c < 3; ++c) {
    const double od = hematoxylin * s.hematoxylin[c] + dab * s.dab[c] + residual * s.residual[c];
    out[c] = s.i0 * std::pow(10.0, -od);
  }
  return out;
}

namespace {

// Slope of the lower quartile of y against x over bins [lo, lo + bins * step) of x: `visit(add)`
// calls add(x, y) for each sample; bins with fewer than min_samples are left out (see
// dab_in_hematoxylin).
template <typename Visit>
double lower_quartile_slope(Visit visit, float lo, float step, int bins, int min_samples) {
  constexpr int kYBins = 512, kMinBins = 3;
  constexpr float kYLo = -0.5f, kYStep = 2.5f / kYBins;
  std::vector<int> hist(static_cast<std::size_t>(bins * kYBins), 0);
  visit([&](float x, float y) {
    const float b = (x - lo) / step;
    if (!(b >= 0.0f && b < static_cast<float>(bins)) || std::isnan(y)) return;
    const int yb = std::clamp(static_cast<int>((y - kYLo) / kYStep), 0, kYBins - 1);
    ++hist[static_cast<std::size_t>(static_cast<int>(b) * kYBins + yb)];
  });
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = 0;
  for (int b = 0; b < bins; ++b) {
    const int* row = &hist[static_cast<std::size_t>(b * kYBins)];
    const int total = std::accumulate(row, row + kYBins, 0);
    if (total < min_samples) continue;
    int seen = 0, k = 0;
    while (4 * (seen + row[k]) < total) seen += row[k++];
    const double x = lo + (b + 0.5) * step, y = kYLo + (k + 0.5) * kYStep;
    sx += x, sy += y, sxx += x * x, sxy += x * y, ++n;
  }
  if (n < kMinBins) return 0.0;
  return std::max(0.0, (n * sxy - sx * sy) / (n * sxx - sx * sx));
}

}  // namespace

double dab_in_hematoxylin(const cv::Mat& hematoxylin, const cv::Mat& dab) {
  CV_Assert(hematoxylin.type() == CV_32F && dab.type() == CV_32F && hematoxylin.size() == dab.size());
  return lower_quartile_slope(
      [&](auto add) {
        for (int r = 0; r < dab.rows; ++r) {
          const float* d = dab.ptr<float>(r);
          const float* h = hematoxylin.ptr<float>(r);
          for (int c = 0; c < dab.cols; ++c)
            if (h[c] < d[c]) add(d[c], h[c]);
        }
      },
      0.2f, 0.1f, 10, 100);
}

double hematoxylin_in_dab(const std::vector<float>& h_excess, const std::vector<float>& dab_excess) {
  CV_Assert(h_excess.size() == dab_excess.size());
  constexpr float kMinExcess = 0.03f;
  constexpr std::size_t kMinNuclei = 20;
  std::vector<float> ratio;
  for (std::size_t k = 0; k < h_excess.size(); ++k)
    if (h_excess[k] >= kMinExcess) ratio.push_back(dab_excess[k] / h_excess[k]);
  if (ratio.size() < kMinNuclei) return 0.0;
  const auto mid = ratio.begin() + static_cast<std::ptrdiff_t>(ratio.size() / 2);
  std::nth_element(ratio.begin(), mid, ratio.end());
  return std::max(0.0, static_cast<double>(*mid));
}

}  // namespace ihc::scoring
