#include "ihc/scoring/stain_estimation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

namespace ihc::scoring {
namespace {

double dot(const Rgb3& a, const Rgb3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

std::string format(const char* fmt, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return buf;
}

// Unit vector with a non-negative component sum (OD directions point into the positive octant);
// small negative components (noise) are clamped to zero.
Rgb3 positive_direction(Rgb3 v) {
  if (v[0] + v[1] + v[2] < 0)
    for (double& c : v) c = -c;
  for (double& c : v) c = std::max(0.0, c);
  const double n = std::sqrt(dot(v, v));
  if (n > 0)
    for (double& c : v) c /= n;
  return v;
}

StainEstimate fallback(StainEstimate e, const StainVectors& reference, std::string why) {
  e.vectors = reference;
  e.vectors.i0 = e.i0;
  e.estimated = false;
  e.warning = std::move(why);
  return e;
}

// Value at `percent` of a sample (nearest rank on the sorted sample, linear in between).
double percentile_of(std::vector<double>& v, double percent) {
  const double pos = std::clamp(percent, 0.0, 100.0) / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double a = v[lo];
  if (lo + 1 >= v.size()) return a;
  const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return a + (b - a) * (pos - static_cast<double>(lo));
}

}  // namespace

double angle_between_deg(const Rgb3& a, const Rgb3& b) {
  const double na = std::sqrt(dot(a, a)), nb = std::sqrt(dot(b, b));
  if (na <= 0 || nb <= 0) return 90.0;
  return std::acos(std::clamp(dot(a, b) / (na * nb), -1.0, 1.0)) * 180.0 / std::numbers::pi;
}

Rgb3 optical_density(const std::array<double, 3>& rgb, double i0) {
  Rgb3 od{};
  for (std::size_t c = 0; c < 3; ++c) od[c] = std::max(0.0, -std::log10(std::max(rgb[c], 1.0) / i0));
  return od;
}

StainEstimate estimate_stains_from_od(const std::vector<Rgb3>& od_all, double i0, const StainVectors& reference,
                                      const StainEstimationParams& params) {
  StainEstimate e;
  e.i0 = i0;
  // 1. Pixels with enough stain to have a reliable direction.
  std::vector<Rgb3> od;
  od.reserve(std::min(od_all.size(), std::max<std::size_t>(params.max_samples, 1)));
  std::size_t usable = 0;
  for (const Rgb3& v : od_all)
    if (std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]) && v[0] + v[1] + v[2] >= params.min_total_od)
      ++usable;
  e.pixels_used = usable;
  if (usable < std::max<std::size_t>(params.min_pixels, 3))
    return fallback(e, reference,
                    "only " + std::to_string(usable) + " stained pixels (need " + std::to_string(params.min_pixels) +
                        "); using the default stain vectors");
  const std::size_t cap = std::max<std::size_t>(params.max_samples, 1);
  const std::size_t stride = (usable + cap - 1) / cap;  // evenly spaced, deterministic subsample
  std::size_t k = 0;
  for (const Rgb3& v : od_all) {
    if (!(std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]) && v[0] + v[1] + v[2] >= params.min_total_od))
      continue;
    if (k++ % stride == 0) od.push_back(v);
  }

  // 2. Both stains present? Judged with the reference vectors (DAB without the eosin-like residual).
  const cv::Matx33d m(reference.hematoxylin[0], reference.hematoxylin[1], reference.hematoxylin[2], reference.dab[0],
                      reference.dab[1], reference.dab[2], reference.residual[0], reference.residual[1],
                      reference.residual[2]);
  const cv::Matx33d inv = m.inv();
  std::size_t with_h = 0, with_dab = 0;
  for (const Rgb3& v : od) {
    const double h = v[0] * inv(0, 0) + v[1] * inv(1, 0) + v[2] * inv(2, 0);
    const double r = v[0] * inv(0, 2) + v[1] * inv(1, 2) + v[2] * inv(2, 2);
    const double d = v[0] * inv(0, 1) + v[1] * inv(1, 1) + v[2] * inv(2, 1) -
                     params.presence_residual_weight * std::max(0.0, r);
    with_h += h > params.stain_presence_od;
    with_dab += d > params.stain_presence_od;
  }
  const auto n = static_cast<double>(od.size());
  e.hematoxylin_fraction = static_cast<double>(with_h) / n;
  e.dab_fraction = static_cast<double>(with_dab) / n;
  if (e.dab_fraction < params.min_stain_fraction)
    return fallback(e, reference,
                    format("too little DAB to estimate its vector (%.2g %% of stained pixels, need %.2g %%); "
                           "using the default stain vectors",
                           100.0 * e.dab_fraction, 100.0 * params.min_stain_fraction));
  if (e.hematoxylin_fraction < params.min_stain_fraction)
    return fallback(e, reference,
                    format("too little haematoxylin to estimate its vector (%.2g %% of stained pixels, need %.2g %%); "
                           "using the default stain vectors",
                           100.0 * e.hematoxylin_fraction, 100.0 * params.min_stain_fraction));

  // 3. The stain plane: the two main eigenvectors of the OD second-moment matrix (a plane through
  //    the origin, as Beer-Lambert mixtures of two stains are).
  cv::Matx33d s = cv::Matx33d::zeros();
  for (const Rgb3& v : od)
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) s(a, b) += v[static_cast<std::size_t>(a)] * v[static_cast<std::size_t>(b)];
  s *= 1.0 / n;
  cv::Mat evals, evecs;
  cv::eigen(cv::Mat(s), evals, evecs);  // descending eigenvalues, eigenvectors as rows
  Rgb3 e1{evecs.at<double>(0, 0), evecs.at<double>(0, 1), evecs.at<double>(0, 2)};
  const Rgb3 e2{evecs.at<double>(1, 0), evecs.at<double>(1, 1), evecs.at<double>(1, 2)};
  if (e1[0] + e1[1] + e1[2] < 0)
    for (double& c : e1) c = -c;

  // 4. Robust extreme angles in that plane.
  std::vector<double> angle;
  angle.reserve(od.size());
  for (const Rgb3& v : od) angle.push_back(std::atan2(dot(v, e2), dot(v, e1)));
  const double lo = percentile_of(angle, params.percentile);
  const double hi = percentile_of(angle, 100.0 - params.percentile);
  auto direction = [&](double phi) {
    return positive_direction(
        {std::cos(phi) * e1[0] + std::sin(phi) * e2[0], std::cos(phi) * e1[1] + std::sin(phi) * e2[1],
         std::cos(phi) * e1[2] + std::sin(phi) * e2[2]});
  };
  Rgb3 a = direction(lo), b = direction(hi);
  // 5. Haematoxylin is the bluer one: more red absorption relative to blue than DAB.
  if (a[0] - a[2] < b[0] - b[2]) std::swap(a, b);
  e.hematoxylin_deviation_deg = angle_between_deg(a, reference.hematoxylin);
  e.dab_deviation_deg = angle_between_deg(b, reference.dab);
  e.separation_deg = angle_between_deg(a, b);

  // 6. Sanity checks against the reference.
  if (e.separation_deg < params.min_separation_deg)
    return fallback(e, reference,
                    format("estimated haematoxylin and DAB vectors are only %.1f degrees apart (need %.0f); "
                           "using the default stain vectors",
                           e.separation_deg, params.min_separation_deg));
  if (e.hematoxylin_deviation_deg > params.max_deviation_deg)
    return fallback(e, reference,
                    format("estimated haematoxylin vector is %.1f degrees from the default (at most %.0f allowed); "
                           "using the default stain vectors",
                           e.hematoxylin_deviation_deg, params.max_deviation_deg));
  if (e.dab_deviation_deg > params.max_deviation_deg)
    return fallback(e, reference,
                    format("estimated DAB vector is %.1f degrees from the default (at most %.0f allowed; another "
                           "stain, e.g. eosin?); using the default stain vectors",
                           e.dab_deviation_deg, params.max_deviation_deg));
  if (params.check_hue && b[2] < b[1])
    return fallback(e, reference,
                    format("estimated DAB vector (%.3f, %.3f, %.3f) absorbs more green than blue: not brown DAB "
                           "(eosin or red cells?); using the default stain vectors",
                           b[0], b[1], b[2]));
  if (params.check_hue && a[0] < a[2])
    return fallback(e, reference,
                    format("estimated haematoxylin vector (%.3f, %.3f, %.3f) absorbs more blue than red: not "
                           "haematoxylin; using the default stain vectors",
                           a[0], a[1], a[2]));
  const auto made = StainVectors::make(a, b, i0);
  if (!made) return fallback(e, reference, "estimated stain vectors are degenerate; using the default stain vectors");
  e.vectors = *made;
  e.estimated = true;
  return e;
}

StainEstimate estimate_stains_from_od(const cv::Mat& od, const cv::Mat& mask, double i0,
                                      const StainVectors& reference, const StainEstimationParams& params) {
  CV_Assert(od.type() == CV_32FC3);
  CV_Assert(mask.empty() || (mask.type() == CV_8UC1 && mask.size() == od.size()));
  std::vector<Rgb3> v;
  v.reserve(static_cast<std::size_t>(od.total()));
  for (int y = 0; y < od.rows; ++y) {
    const auto* p = od.ptr<cv::Vec3f>(y);
    const std::uint8_t* m = mask.empty() ? nullptr : mask.ptr<std::uint8_t>(y);
    for (int x = 0; x < od.cols; ++x)
      if (!m || m[x]) v.push_back({p[x][0], p[x][1], p[x][2]});
  }
  return estimate_stains_from_od(v, i0, reference, params);
}

StainEstimate estimate_stains(const std::vector<cv::Mat>& rgb, const std::vector<cv::Mat>& masks, double i0,
                              const StainVectors& reference, const StainEstimationParams& params) {
  double table[256];
  for (int i = 0; i < 256; ++i) table[i] = std::max(0.0, -std::log10(std::max(i, 1) / i0));
  std::vector<Rgb3> v;
  std::size_t total = 0;
  for (const cv::Mat& img : rgb) total += img.total();
  v.reserve(total);
  for (std::size_t k = 0; k < rgb.size(); ++k) {
    const cv::Mat& img = rgb[k];
    const cv::Mat mask = k < masks.size() ? masks[k] : cv::Mat();
    CV_Assert(img.type() == CV_8UC3);
    CV_Assert(mask.empty() || (mask.type() == CV_8UC1 && mask.size() == img.size()));
    for (int y = 0; y < img.rows; ++y) {
      const auto* p = img.ptr<std::uint8_t>(y);
      const std::uint8_t* m = mask.empty() ? nullptr : mask.ptr<std::uint8_t>(y);
      for (int x = 0; x < img.cols; ++x)
        if (!m || m[x]) v.push_back({table[p[3 * x]], table[p[3 * x + 1]], table[p[3 * x + 2]]});
    }
  }
  return estimate_stains_from_od(v, i0, reference, params);
}

BackgroundEstimate estimate_background(const cv::Mat& rgb, const cv::Mat& tissue_mask, double fallback_i0,
                                       const BackgroundParams& params) {
  CV_Assert(rgb.type() == CV_8UC3);
  CV_Assert(tissue_mask.empty() || (tissue_mask.type() == CV_8UC1 && tissue_mask.size() == rgb.size()));
  BackgroundEstimate out;
  out.i0 = fallback_i0;
  out.per_channel = {fallback_i0, fallback_i0, fallback_i0};
  std::array<std::array<std::size_t, 256>, 3> hist{};
  std::size_t count = 0;
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* p = rgb.ptr<std::uint8_t>(y);
    const std::uint8_t* m = tissue_mask.empty() ? nullptr : tissue_mask.ptr<std::uint8_t>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      if (m && m[x]) continue;
      ++count;
      for (std::size_t c = 0; c < 3; ++c) ++hist[c][p[3 * x + static_cast<int>(c)]];
    }
  }
  out.pixels_used = count;
  const auto needed = std::max(params.min_pixels,
                               static_cast<std::size_t>(std::ceil(params.min_fraction * static_cast<double>(rgb.total()))));
  if (count == 0 || count < needed) return out;
  double sum = 0;
  for (std::size_t c = 0; c < 3; ++c) {
    // Smallest value with at least `percentile` % of the pixels at or below it.
    const double want = params.percentile / 100.0 * static_cast<double>(count);
    std::size_t cumulative = 0;
    int value = 255;
    for (int i = 0; i < 256; ++i) {
      cumulative += hist[c][static_cast<std::size_t>(i)];
      if (static_cast<double>(cumulative) >= want) {
        value = i;
        break;
      }
    }
    out.per_channel[c] = std::clamp(static_cast<double>(value), params.min_i0, params.max_i0);
    sum += out.per_channel[c];
  }
  out.i0 = std::clamp(sum / 3.0, params.min_i0, params.max_i0);
  out.estimated = true;
  return out;
}

}  // namespace ihc::scoring
