#include "ihc/scoring/cells.hpp"

#include "ihc/scoring/artefacts.hpp"
#include "ihc/scoring/stains.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include <opencv2/imgproc.hpp>

namespace ihc::scoring {
namespace {

// 2 x 2 block average (the image's last odd row or column is dropped).
cv::Mat half_size(const cv::Mat& src) {
  cv::Mat out(std::max(1, src.rows / 2), std::max(1, src.cols / 2), CV_32F);
  if (src.rows < 2 || src.cols < 2) {
    out.setTo(src.at<float>(0, 0));
    return out;
  }
  for (int y = 0; y < out.rows; ++y) {
    const float* a = src.ptr<float>(2 * y);
    const float* b = src.ptr<float>(2 * y + 1);
    float* o = out.ptr<float>(y);
    for (int x = 0; x < out.cols; ++x) o[x] = 0.25f * (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1]);
  }
  return out;
}

struct Seed {
  int x, y;
  float strength;
};

// Local maxima of the nucleus-scale smoothed haematoxylin that stand out from their surroundings.
std::vector<Seed> find_nucleus_seeds(const cv::Mat& h_nucleus, double radius_px, const CellParams& p) {
  const int peak_r = std::max(1, static_cast<int>(std::lround(radius_px * 0.75)));
  const int ring_r = std::max(2, static_cast<int>(std::lround(radius_px * 2.0)));
  cv::Mat local_max, local_min;
  cv::dilate(h_nucleus, local_max,
             cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * peak_r + 1, 2 * peak_r + 1)));
  cv::erode(h_nucleus, local_min,
            cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * ring_r + 1, 2 * ring_r + 1)));
  std::vector<Seed> seeds;
  for (int y = 0; y < h_nucleus.rows; ++y) {
    const float* v = h_nucleus.ptr<float>(y);
    const float* mx = local_max.ptr<float>(y);
    const float* mn = local_min.ptr<float>(y);
    for (int x = 0; x < h_nucleus.cols; ++x) {
      if (v[x] < mx[x] || v[x] < p.nucleus_min_od || v[x] - mn[x] < p.nucleus_min_contrast_od) continue;
      // Plateaus give several equal maxima: keep the first within peak_r.
      bool duplicate = false;
      for (auto it = seeds.rbegin(); it != seeds.rend() && it->y >= y - peak_r; ++it) {
        if (std::abs(it->x - x) <= peak_r && it->strength == v[x]) {
          duplicate = true;
          break;
        }
      }
      if (!duplicate) seeds.push_back({x, y, v[x]});
    }
  }
  return seeds;
}

// Seeded watershed by priority flood with a bucket queue (O(pixels)). Priority of a pixel for a
// cell: DAB plus a small penalty growing with distance from that cell's seed, so that where there
// is no membrane the outline falls half-way between nuclei. A cell never grows past max_r;
// pixels no cell reaches keep label 0.
// `dab_full` is at twice the resolution of the seeds and labels: the flood runs on its 2 x 2
// block average (half_size), computed here on the way into the bucket image.
cv::Mat grow_cells(const cv::Mat& dab_full, const std::vector<Seed>& seeds, double max_r) {
  const int w = std::max(1, dab_full.cols / 2), h = std::max(1, dab_full.rows / 2);
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
  if (dab_full.rows < 2 || dab_full.cols < 2) {
    px.assign(px.size(), bucket_of(half_size(dab_full).at<float>(0, 0)));
  } else {
    for (int y = 0; y < h; ++y) {
      const float* a = dab_full.ptr<float>(2 * y);
      const float* b = dab_full.ptr<float>(2 * y + 1);
      std::uint32_t* dst = px.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(w);
      for (int x = 0; x < w; ++x) dst[x] = bucket_of(0.25f * (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1]));
    }
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

// Pixel offsets along each ray at half-pixel steps, computed once per tile.
struct RayTable {
  int rays = 0, steps = 0;
  std::vector<cv::Point> offsets;  // rays * steps
  std::vector<float> radius;       // steps
  RayTable(int n_rays, double max_r, double step) : rays(n_rays) {
    steps = static_cast<int>(std::floor(max_r / step)) + 3;  // two steps past max_r
    for (int k = 0; k < steps; ++k) radius.push_back(static_cast<float>(k * step));
    for (int a = 0; a < rays; ++a) {
      const double theta = 2.0 * std::numbers::pi * a / rays;
      for (int k = 0; k < steps; ++k)
        offsets.emplace_back(static_cast<int>(std::lround(std::cos(theta) * k * step)),
                             static_cast<int>(std::lround(std::sin(theta) * k * step)));
    }
  }
};

// The ray table with consecutive steps on the same pixel merged into one run (half-pixel steps
// visit most pixels two or three times): each run is loaded and compared once. Steps stay the
// unit of distance; a run covers steps first_step[r] .. last_step[r]. Offsets are linear, into
// an image `width` wide (DAB) and into the half-resolution labels (`half_width` wide) for each
// parity of the seed's (x, y): floor((2 * hx + px + ox) / 2) = hx + ((px + ox) >> 1).
struct RayRuns {
  std::vector<int> begin;        // rays + 1: ray a's runs are begin[a] .. begin[a + 1] - 1
  std::vector<int> first_step, last_step, dab_offset;
  std::vector<cv::Point> offset;
  std::array<std::vector<int>, 4> label_offset;
  std::vector<int> run_of_step;  // rays * steps: the run (counted from the ray's first) of each step
  RayRuns(const RayTable& t, int width, int half_width) {
    run_of_step.resize(t.offsets.size());
    for (int a = 0; a < t.rays; ++a) {
      begin.push_back(static_cast<int>(first_step.size()));
      for (int st = 0; st < t.steps; ++st) {
        const cv::Point o = t.offsets[static_cast<std::size_t>(a * t.steps + st)];
        if (st == 0 || o != offset.back()) {
          first_step.push_back(st);
          last_step.push_back(st);
          offset.push_back(o);
          dab_offset.push_back(o.y * width + o.x);
          for (int parity = 0; parity < 4; ++parity)
            label_offset[static_cast<std::size_t>(parity)].push_back(((parity / 2 + o.y) >> 1) * half_width +
                                                                      ((parity % 2 + o.x) >> 1));
        } else {
          last_step.back() = st;
        }
        run_of_step[static_cast<std::size_t>(a * t.steps + st)] = static_cast<int>(first_step.size()) - 1 - begin.back();
      }
    }
    begin.push_back(static_cast<int>(first_step.size()));
  }
};

float median_of(std::vector<float>& v) {
  if (v.empty()) return 0.0f;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace

CellClass classify_membrane(double completeness, double intensity_od, const CellParams& p, bool lateral) {
  if (completeness >= p.complete_fraction || (lateral && p.lateral_counts_complete)) {
    if (intensity_od >= p.intense_od) return CellClass::ThreePlus;
    if (intensity_od >= p.moderate_od) return CellClass::TwoPlus;
    return CellClass::OnePlus;  // complete but only barely perceptible
  }
  if (completeness >= p.partial_min_fraction) {
    if (intensity_od >= p.intense_od && completeness >= p.intense_incomplete_fraction)
      return CellClass::TwoPlus;  // intense but incomplete (basolateral)
    return CellClass::OnePlus;
  }
  return CellClass::Negative;
}

std::string left_out_reasons(std::uint8_t left_out) {
  static constexpr std::array<const char*, 5> kNames{"small_nucleus", "large_nucleus", "few_neighbours",
                                                     "elongated_nucleus", "image_edge"};
  std::string out;
  for (std::size_t b = 0; b < kNames.size(); ++b)
    if (left_out & (1u << b)) out += (out.empty() ? "" : ",") + std::string(kNames[b]);
  return out;
}

bool is_lateral(const std::vector<std::uint8_t>& stained, int rays) {
  if (rays < 4) return false;
  // Basolateral (U): one unbroken arc of at least half the circle.
  int longest = 0, run = 0;
  for (int i = 0; i < 2 * rays; ++i) {
    run = stained[static_cast<std::size_t>(i % rays)] ? run + 1 : 0;
    longest = std::max(longest, std::min(run, rays));
  }
  if (longest * 2 >= rays) return true;
  // Lateral: two opposite quarter-circles, each at least half stained.
  const int quarter = rays / 4, half = rays / 2;
  for (int a = 0; a < half; ++a) {
    int near_side = 0, far_side = 0;
    for (int d = -quarter / 2; d < quarter - quarter / 2; ++d) {
      near_side += stained[static_cast<std::size_t>((a + d + rays) % rays)];
      far_side += stained[static_cast<std::size_t>((a + half + d + rays) % rays)];
    }
    if (2 * near_side >= quarter && 2 * far_side >= quarter) return true;
  }
  return false;
}

std::vector<Cell> detect_cells(const cv::Mat& hematoxylin, const cv::Mat& dab, double mpp,
                               const cv::Rect& core, const CellParams& p, const cv::Rect& valid_region) {
  CV_Assert(hematoxylin.type() == CV_32F && dab.type() == CV_32F && hematoxylin.size() == dab.size());
  return detect_cells_half_h(half_size(hematoxylin), dab, mpp, core, p, valid_region);
}

std::vector<Cell> detect_cells_half_h(const cv::Mat& h_half, const cv::Mat& dab, double mpp, const cv::Rect& core,
                                      const CellParams& p, const cv::Rect& valid_region) {
  CV_Assert(dab.type() == CV_32F);
  return detect_cells_smoothed(h_half, smooth_dab_for_cells(dab), mpp, core, p, valid_region);
}

std::vector<Cell> detect_cells_smoothed(const cv::Mat& h_half, const cv::Mat& dab_fine, double mpp, const cv::Rect& core,
                                        const CellParams& p, const cv::Rect& valid_region) {
  const cv::Mat& dab = dab_fine;  // sizes only
  CV_Assert(h_half.type() == CV_32F && dab.type() == CV_32F);
  CV_Assert(h_half.rows == std::max(1, dab.rows / 2) && h_half.cols == std::max(1, dab.cols / 2));
  CV_Assert(mpp > 0);
  const double nucleus_r = p.nucleus_radius_um / mpp;
  const double max_r = p.max_cell_radius_um / mpp;
  const double px_area_um2 = mpp * mpp;

  // Nuclei are found at half resolution (a nucleus is ~7 µm across: nothing is lost), smoothed
  // at the nucleus scale (sigma = radius / 2). Outlines are grown at half resolution too: the
  // watershed only has to put each boundary on the right membrane; the membrane peak itself is
  // then sought at full resolution.
  cv::Mat h_nucleus;
  const double nucleus_sigma = std::max(0.5, nucleus_r * 0.25);
  const int nucleus_taps = 2 * static_cast<int>(std::lround(3.5 * nucleus_sigma)) + 1;  // to 3.5 sigma
  cv::GaussianBlur(h_half, h_nucleus, cv::Size(nucleus_taps, nucleus_taps), nucleus_sigma);
  const std::vector<Seed> half_seeds = find_nucleus_seeds(h_nucleus, nucleus_r * 0.5, p);
  std::vector<Seed> seeds = half_seeds;
  for (auto& s : seeds) {
    s.x = std::min(2 * s.x + 1, dab.cols - 1);
    s.y = std::min(2 * s.y + 1, dab.rows - 1);
  }
  const cv::Mat half_labels = grow_cells(dab_fine, half_seeds, max_r * 0.5);
  // Full-resolution pixel (x, y) belongs to half-resolution label (x / 2, y / 2); an odd last
  // row or column takes the one before it.
  const int hw = half_labels.cols, hh = half_labels.rows;
  const int* half_label_data = half_labels.ptr<int>(0);
  // Pigment is brown-black: its peak carries haematoxylin (at least pigment_h_ratio x its DAB);
  // a DAB membrane's peak mostly does not, and is then not tested further.
  const float* h_half_data = h_half.ptr<float>(0);
  const auto pigment_h_ratio = static_cast<float>(p.pigment_h_ratio);
  // Granule test: from a peak, move twice to the highest of the 8 neighbours, then look for a point at
  // half that DAB or more on a ring of radius pigment_ring_um around it. A membrane crosses the
  // ring (twice); an isolated granule does not.
  const int ring_px = std::max(1, static_cast<int>(std::lround(p.pigment_ring_um / mpp)));
  const int pigment_margin = ring_px + 3;
  std::array<int, 8> neighbour_offset{};
  {
    int k = 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx)
        if (dx != 0 || dy != 0) neighbour_offset[static_cast<std::size_t>(k++)] = dy * dab.cols + dx;
  }
  std::array<int, 12> ring_offset{};
  for (std::size_t k = 0; k < ring_offset.size(); ++k) {
    const double t = 2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(ring_offset.size());
    ring_offset[k] = static_cast<int>(std::lround(ring_px * std::sin(t))) * dab.cols +
                     static_cast<int>(std::lround(ring_px * std::cos(t)));
  }
  auto is_granule = [&](const float* at) {
    const float* top = at;
    for (int climb = 0; climb < 2; ++climb) {
      const float* from = top;
      for (const int o : neighbour_offset) top = from[o] > *top ? from + o : top;
    }
    const float half = 0.5f * *top;
    for (const int o : ring_offset)
      if (top[o] >= half) return false;
    return true;
  };
  auto label_at = [&](int x, int y) {
    return half_label_data[static_cast<std::size_t>(std::min(y >> 1, hh - 1)) * static_cast<std::size_t>(hw) +
                           static_cast<std::size_t>(std::min(x >> 1, hw - 1))];
  };

  // Neighbour counts through a coarse grid of seeds.
  const double nb_r = p.neighbourhood_um / mpp;
  const int gcell = std::max(1, static_cast<int>(std::ceil(nb_r)));
  const int gw = dab.cols / gcell + 1, gh = dab.rows / gcell + 1;
  std::vector<std::vector<int>> grid(static_cast<std::size_t>(gw * gh));
  for (std::size_t k = 0; k < seeds.size(); ++k)
    grid[static_cast<std::size_t>((seeds[k].y / gcell) * gw + seeds[k].x / gcell)].push_back(static_cast<int>(k));

  const int w = dab_fine.cols, h = dab_fine.rows;
  const cv::Rect valid = valid_region.area() > 0 ? (valid_region & cv::Rect(0, 0, w, h)) : cv::Rect(0, 0, w, h);
  const int vx0 = valid.x, vy0 = valid.y, vx1 = valid.x + valid.width, vy1 = valid.y + valid.height;
  const double ridge_px = p.ridge_um / mpp;
  const int ridge_steps = std::max(1, static_cast<int>(std::lround(ridge_px / 0.5)));
  const RayTable rays(p.rays, max_r + 2.0 + ridge_px, 0.5);
  int first_step = 0;
  while (first_step < rays.steps && rays.radius[static_cast<std::size_t>(first_step)] < nucleus_r * 0.8) ++first_step;
  const float* dab_data = dab_fine.ptr<float>(0);
  const RayRuns runs(rays, w, hw);
  std::vector<float> run_value(static_cast<std::size_t>(rays.steps));
  // Steps of each run from first_step on: a run's weight in a ray's mean over steps.
  std::vector<float> run_weight(runs.first_step.size());
  for (std::size_t r = 0; r < run_weight.size(); ++r)
    run_weight[r] = static_cast<float>(std::max(0, runs.last_step[r] - std::max(runs.first_step[r], first_step) + 1));
  // How far (pixels, either axis) a ray reaches: a cell within that of the valid region's edges
  // sees all of its rays there, and the half-resolution label of any ray pixel is inside the
  // label image (x / 2 < w / 2 for x <= w - 2: reach is at least 1).
  int reach = 1;
  for (const cv::Point& o : rays.offsets) reach = std::max({reach, std::abs(o.x), std::abs(o.y)});
  ++reach;
  std::vector<Cell> cells;
  std::vector<float> stained_peaks, ray_peak(static_cast<std::size_t>(std::max(1, p.rays)));
  std::vector<float> ray_height(static_cast<std::size_t>(std::max(1, p.rays)));  // raw peak per direction
  std::vector<std::uint8_t> in_arc(static_cast<std::size_t>(std::max(1, p.rays)));  // ray in a kept stained arc
  std::vector<float> ray_cytoplasm(static_cast<std::size_t>(std::max(1, p.rays)));
  // The membrane's blur reaches further on coarser pixels: the gap grows by two pixels beyond
  // 0.5 um/px, so cytoplasm is sampled clear of it at any scan resolution.
  const double cytoplasm_gap_um = p.cytoplasm_gap_um + 2.0 * std::max(0.0, mpp - 0.5);
  const int cytoplasm_gap_steps = static_cast<int>(std::lround(cytoplasm_gap_um / mpp / 0.5));
  const auto step_um = static_cast<float>(0.5 * mpp);  // ray steps are half a pixel
  const auto membrane_ref_um = static_cast<float>(p.membrane_ref_um);
  const auto max_width_um = static_cast<float>(p.max_membrane_width_um + 2.0 * mpp);
  // A line narrower than a pixel shows a peak that falls as the pixel grows: the floor is set
  // at 0.5 um/px and follows the pixel size beyond it.
  const auto min_peak_od = static_cast<float>(p.min_membrane_peak_od * std::min(1.0, 0.5 / mpp));
  const int min_arc_rays = std::max(1, static_cast<int>(std::ceil(p.min_arc_degrees / (360.0 / std::max(1, p.rays)) - 1e-9)));
  for (std::size_t k = 0; k < seeds.size(); ++k) {
    const Seed& s = seeds[k];
    if (!core.contains(cv::Point(s.x, s.y))) continue;
    const int own = static_cast<int>(k) + 1;
    Cell cell;
    cell.centre = cv::Point2f(static_cast<float>(s.x), static_cast<float>(s.y));

    // Nucleus: pixels of this cell near the seed above half the seed's haematoxylin, measured
    // at half resolution where the seed was found (a half pixel is four full ones). Branch-free
    // integer sums: this loop runs over every cell.
    const Seed& hs = half_seeds[k];
    const float h_cut = std::max(static_cast<float>(p.nucleus_min_od) * 0.5f, 0.5f * hs.strength);
    const int nr = static_cast<int>(std::ceil(nucleus_r * 0.5 * 1.6));
    int nucleus_px = 0;
    std::int64_t mx = 0, my = 0, mxx = 0, myy = 0, mxy = 0;  // moments, for the nucleus shape
    for (int y = std::max(0, hs.y - nr); y <= std::min(hh - 1, hs.y + nr); ++y) {
      const int* lr = half_labels.ptr<int>(y);
      const float* hr = h_half.ptr<float>(y);
      const int dy = y - hs.y;
      int n_row = 0, sx = 0, sxx = 0;
      for (int x = std::max(0, hs.x - nr); x <= std::min(hw - 1, hs.x + nr); ++x) {
        const int in = static_cast<int>(lr[x] == own) & static_cast<int>(hr[x] >= h_cut);
        const int dx = x - hs.x;
        n_row += in;
        sx += in * dx;
        sxx += in * dx * dx;
      }
      nucleus_px += n_row;
      mx += sx;
      my += static_cast<std::int64_t>(n_row) * dy;
      mxx += sxx;
      myy += static_cast<std::int64_t>(n_row) * dy * dy;
      mxy += static_cast<std::int64_t>(sx) * dy;
    }
    nucleus_px *= 4;
    cell.nucleus_area_um2 = static_cast<float>(nucleus_px * px_area_um2);
    if (nucleus_px >= 12) {  // three half-resolution pixels
      // Elongation = ratio of the principal axes of the nucleus (1 for a disc).
      const double n = nucleus_px / 4.0, cx = static_cast<double>(mx) / n, cy = static_cast<double>(my) / n;
      const double vxx = static_cast<double>(mxx) / n - cx * cx, vyy = static_cast<double>(myy) / n - cy * cy,
                   vxy = static_cast<double>(mxy) / n - cx * cy;
      const double tr = vxx + vyy, det = vxx * vyy - vxy * vxy;
      const double disc = std::sqrt(std::max(0.0, tr * tr / 4 - det));
      const double l1 = tr / 2 + disc, l2 = std::max(1e-6, tr / 2 - disc);
      cell.nucleus_elongation = static_cast<float>(std::sqrt(l1 / l2));
    }

    // Neighbours.
    const int gx = s.x / gcell, gy = s.y / gcell;
    for (int yy = std::max(0, gy - 1); yy <= std::min(gh - 1, gy + 1); ++yy)
      for (int xx = std::max(0, gx - 1); xx <= std::min(gw - 1, gx + 1); ++xx)
        for (int j : grid[static_cast<std::size_t>(yy * gw + xx)]) {
          if (j == static_cast<int>(k)) continue;
          const double dx = seeds[static_cast<std::size_t>(j)].x - s.x, dy = seeds[static_cast<std::size_t>(j)].y - s.y;
          if (dx * dx + dy * dy <= nb_r * nb_r) ++cell.neighbours;
        }

    // Membrane along rays. The membrane is the DAB peak between the nucleus and just past the
    // outline (the half-resolution boundary is good to one of its pixels, so 1.5 px further);
    // where a membrane has a gap the region leaks past it, so the whole ray is searched, not
    // only the outline. A membrane is a ridge: the peak must stand above the lowest DAB on
    // both sides of it, towards the nucleus and within ridge_um beyond it. Diffuse cytoplasmic
    // DAB and the edge of a stained nucleus are steps or plateaus, not ridges.
    stained_peaks.clear();
    if (p.keep_outlines) cell.outline.reserve(static_cast<std::size_t>(p.rays));
    // Rays that leave the valid region (the image or slide ends) before reaching the membrane
    // say nothing about it: completeness is the stained share of the rays that could see.
    const bool inside = s.x - reach >= vx0 && s.y - reach >= vy0 && s.x + reach < vx1 && s.y + reach < vy1;
    int valid_rays = 0, cytoplasm_rays = 0;
    const int parity = (s.y & 1) * 2 + (s.x & 1);
    const int* own_labels = half_label_data + static_cast<std::ptrdiff_t>(s.y >> 1) * hw + (s.x >> 1);
    const float* own_dab = dab_data + static_cast<std::ptrdiff_t>(s.y) * w + s.x;
    for (int a = 0; a < p.rays; ++a) {
      const std::size_t ray_begin = static_cast<std::size_t>(a) * static_cast<std::size_t>(rays.steps);
      const cv::Point* off = &rays.offsets[ray_begin];
      // This ray's runs of steps on one pixel (RayRuns); r counts runs from the ray's first.
      const int r0 = runs.begin[static_cast<std::size_t>(a)];
      const int n_runs = runs.begin[static_cast<std::size_t>(a) + 1] - r0;
      const int* run_first = &runs.first_step[static_cast<std::size_t>(r0)];
      const int* run_last = &runs.last_step[static_cast<std::size_t>(r0)];
      const int* run_of = &runs.run_of_step[ray_begin];
      const int first_run = first_step < rays.steps ? run_of[first_step] : n_runs;
      // Samples run to ridge_steps past 3 steps beyond the outline (k_end: the first step
      // outside this cell), or to the ray's end: steps 0 .. n - 1. Runs that lie wholly inside
      // the nucleus (before first_step) are never looked at, so never loaded.
      int n = 0, k_end = -1;
      bool cut = false;
      if (inside) {
        const int* lo = &runs.label_offset[static_cast<std::size_t>(parity)][static_cast<std::size_t>(r0)];
        const int* dof = &runs.dab_offset[static_cast<std::size_t>(r0)];
        int r = 0;
        while (r < n_runs && own_labels[lo[r]] == own) ++r;
        k_end = r < n_runs ? run_first[r] : -1;
        n = k_end < 0 ? rays.steps : std::min(rays.steps, k_end + 4 + ridge_steps);
        const int end_run = run_of[n - 1] + 1;
        for (r = first_run; r < end_run; ++r) run_value[static_cast<std::size_t>(r)] = own_dab[dof[r]];
      } else {
        for (int r = 0; r < n_runs; ++r) {
          const cv::Point o = runs.offset[static_cast<std::size_t>(r0 + r)];
          const int x = s.x + o.x, y = s.y + o.y;
          if (x < vx0 || y < vy0 || x >= vx1 || y >= vy1) {
            cut = k_end < 0 || run_first[r] <= k_end + 3;
            break;
          }
          if (run_last[r] >= first_step)
            run_value[static_cast<std::size_t>(r)] =
                dab_data[static_cast<std::size_t>(y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x)];
          n = run_last[r] + 1;
          if (k_end < 0 && label_at(x, y) != own) k_end = run_first[r];
          if (k_end >= 0 && run_last[r] >= k_end + 3 + ridge_steps) {
            n = k_end + 4 + ridge_steps;
            break;
          }
        }
      }
      const int search_end = std::min(n - 1, k_end < 0 ? n - 1 : k_end + 3);
      const int last_run = search_end >= first_step ? run_of[search_end] : -1;
      // The peak (first maximum) among runs from_run .. last_run and, in the same pass, the
      // lowest DAB between from_run and it: branch-free, as where the peak lies is unpredictable.
      float peak = 0.0f, inner = 0.0f;
      int r_peak = -1;
      const auto find_peak = [&](int from_run) {
        float lowest = std::numeric_limits<float>::max();
        peak = 0.0f;
        inner = 0.0f;
        r_peak = -1;
        // Selects by mask: written as ?: gcc branches on `higher`, which mispredicts.
        for (int r = from_run; r <= last_run; ++r) {
          const float v = run_value[static_cast<std::size_t>(r)];
          const std::uint32_t higher = 0u - static_cast<std::uint32_t>(v > peak);
          inner = std::bit_cast<float>((std::bit_cast<std::uint32_t>(std::min(lowest, v)) & higher) |
                                       (std::bit_cast<std::uint32_t>(inner) & ~higher));
          r_peak = static_cast<int>((static_cast<std::uint32_t>(r) & higher) | (static_cast<std::uint32_t>(r_peak) & ~higher));
          peak = std::max(peak, v);
          lowest = std::min(lowest, v);
        }
        return r_peak < 0 ? -1 : std::max(run_first[r_peak], first_step);
      };
      // A membrane is a ridge: it stands above the lowest DAB on both sides (inner: found with
      // the peak; outer: within ridge_um beyond it), the higher of which is its base. What it
      // carries is measured as DAB mass, not peak height: the sum of DAB above the base over the
      // part of the ridge above half its height, in OD x um (membrane_od sets it back in OD
      // units as base + mass / membrane_ref_um). Blur and coarser pixels lower and widen a
      // membrane's profile but keep its mass, so the measure does not depend on the scan.
      float membrane_od = 0.0f;
      const auto is_ridge = [&](int at) {
        if (at < 0) return false;
        float outer = peak;
        const int outer_end = std::min(n - 1, at + ridge_steps);
        if (at + 1 <= outer_end)
          for (int r = run_of[at + 1]; r <= run_of[outer_end]; ++r) outer = std::min(outer, run_value[static_cast<std::size_t>(r)]);
        if (at + 1 > n - 1) outer = inner;  // the image ends: judge by the inner side alone
        const float base = std::max(inner, outer);
        if (peak - base < min_peak_od) return false;  // grain: no need to measure it
        const float half = base + 0.5f * (peak - base);
        const int rp = run_of[at], r_lo = first_run, r_hi = run_of[n - 1];
        const float* weight = &run_weight[static_cast<std::size_t>(r0)];
        float mass_steps = 0.0f, width_steps = 0.0f;
        for (int r = rp; r >= r_lo && run_value[static_cast<std::size_t>(r)] >= half; --r) {
          mass_steps += (run_value[static_cast<std::size_t>(r)] - base) * weight[r];
          width_steps += weight[r];
        }
        for (int r = rp + 1; r <= r_hi && run_value[static_cast<std::size_t>(r)] >= half; ++r) {
          mass_steps += (run_value[static_cast<std::size_t>(r)] - base) * weight[r];
          width_steps += weight[r];
        }
        const float excess = mass_steps * step_um / membrane_ref_um;
        membrane_od = base + excess;
        return membrane_od >= p.faint_od && excess >= p.min_membrane_contrast_od && width_steps * step_um <= max_width_um;
      };
      int s_peak = find_peak(first_run);
      // Cytoplasm on this ray (artefacts.hpp): mean DAB over the steps from the nucleus to
      // cytoplasm_gap_um inside the peak; none when the membrane is too close to the nucleus to
      // leave a sample. Two sums, so that the additions do not wait on each other.
      const int cytoplasm_last = s_peak - cytoplasm_gap_steps;
      if (s_peak >= 0 && cytoplasm_last >= first_step) {
        const int rc = run_of[cytoplasm_last];
        const float* weight = &run_weight[static_cast<std::size_t>(r0)];
        float sum0 = run_value[static_cast<std::size_t>(rc)] *
                     static_cast<float>(cytoplasm_last - std::max(run_first[rc], first_step) + 1);
        float sum1 = 0.0f;
        int r = first_run;
        for (; r + 1 < rc; r += 2) {
          sum0 += run_value[static_cast<std::size_t>(r)] * weight[r];
          sum1 += run_value[static_cast<std::size_t>(r) + 1] * weight[r + 1];
        }
        if (r < rc) sum0 += run_value[static_cast<std::size_t>(r)] * weight[r];
        ray_cytoplasm[static_cast<std::size_t>(cytoplasm_rays++)] =
            (sum0 + sum1) / static_cast<float>(cytoplasm_last - first_step + 1);
      }
      bool stained = is_ridge(s_peak);
      // Pigment (artefacts.hpp): a peak that is an isolated granule is not membrane; the
      // membrane, if any, is sought again beyond it (twice at most). A direction that ends with
      // no membrane after a granule counts as a pigment direction.
      bool granule_seen = false;
      for (int retry = 0; stained && p.pigment_ring_um > 0 && retry < 3; ++retry) {
        const int px = s.x + off[s_peak].x, py = s.y + off[s_peak].y;
        if (px < pigment_margin || py < pigment_margin || px + pigment_margin >= w || py + pigment_margin >= h ||
            h_half_data[static_cast<std::ptrdiff_t>(py >> 1) * hw + (px >> 1)] < pigment_h_ratio * peak ||
            !is_granule(dab_data + static_cast<std::ptrdiff_t>(py) * w + px))
          break;
        granule_seen = true;
        stained = false;
        // Down the granule's outer flank to the valley, then the highest point beyond it.
        int valley = run_of[s_peak];
        while (valley < last_run && run_value[static_cast<std::size_t>(valley) + 1] <= run_value[static_cast<std::size_t>(valley)])
          ++valley;
        if (retry == 2 || valley >= last_run) break;
        s_peak = find_peak(valley);
        stained = is_ridge(s_peak);
      }
      if (granule_seen && !stained) ++cell.pigment_rays;
      ray_peak[static_cast<std::size_t>(a)] = stained ? membrane_od : -1.0f;
      ray_height[static_cast<std::size_t>(a)] = peak;
      if (!cut) ++valid_rays;
      if (p.keep_outlines) {
        const int at = s_peak >= 0 ? s_peak : std::clamp(k_end, 0, std::max(0, n - 1));
        cell.outline.emplace_back(static_cast<float>(s.x + off[at].x), static_cast<float>(s.y + off[at].y));
      }
    }
    if (cytoplasm_rays * 4 >= p.rays) {
      const auto mid = ray_cytoplasm.begin() + cytoplasm_rays / 2;
      std::nth_element(ray_cytoplasm.begin(), mid, ray_cytoplasm.begin() + cytoplasm_rays);
      cell.cytoplasm_mean_od = *mid;
    }
    // Membrane staining is continuous: stained directions count only in arcs of at least
    // min_arc_degrees; isolated ones are noise (JPEG blocks, grain, stain bleed).
    const int n_rays = p.rays;
    const auto stained_at = [&](int a) { return ray_peak[static_cast<std::size_t>(a % n_rays)] >= 0; };
    const auto unstained = std::find_if(ray_peak.begin(), ray_peak.begin() + n_rays, [](float v) { return v < 0; });
    std::fill(in_arc.begin(), in_arc.end(), std::uint8_t{0});
    if (unstained == ray_peak.begin() + n_rays) {
      if (n_rays >= min_arc_rays) {
        stained_peaks.assign(ray_peak.begin(), ray_peak.begin() + n_rays);
        std::fill(in_arc.begin(), in_arc.end(), std::uint8_t{1});
      }
    } else {
      // Walk once round the circle from an unstained ray; keep each run of stained rays that is
      // long enough.
      const int start = static_cast<int>(unstained - ray_peak.begin());
      int run_start = -1;
      for (int i = 1; i <= n_rays; ++i) {
        const int a = start + i;
        if (stained_at(a)) {
          if (run_start < 0) run_start = a;
          continue;
        }
        if (run_start >= 0 && a - run_start >= min_arc_rays)
          for (int r = run_start; r < a; ++r) {
            stained_peaks.push_back(ray_peak[static_cast<std::size_t>(r % n_rays)]);
            in_arc[static_cast<std::size_t>(r % n_rays)] = 1;
          }
        run_start = -1;
      }
    }
    cell.completeness =
        std::min(1.0f, static_cast<float>(stained_peaks.size()) / static_cast<float>(std::max(1, valid_rays)));
    cell.intensity_od = median_of(stained_peaks);
    stained_peaks.clear();
    for (int a = 0; a < n_rays; ++a)
      if (in_arc[static_cast<std::size_t>(a)]) stained_peaks.push_back(ray_height[static_cast<std::size_t>(a)]);
    cell.membrane_peak_od = median_of(stained_peaks);
    cell.lateral = cell.completeness < p.complete_fraction && is_lateral(in_arc, n_rays);
    cell.cell_class = classify_membrane(cell.completeness, cell.intensity_od, p, cell.lateral);
    // Pigment (artefacts.hpp): granules strung along an outline leave "stained" directions
    // between them (the granules' blurred tails). When granules make up pigment_cell_fraction of
    // the directions that looked stained, the outline is pigment-laden and the cell is scored 0.
    if (cell.cell_class != CellClass::Negative && cell.pigment_rays >= p.pigment_min_rays) {
      const auto stained_rays = std::count_if(ray_peak.begin(), ray_peak.begin() + n_rays, [](float v) { return v >= 0; });
      if (cell.pigment_rays >= p.pigment_cell_fraction * static_cast<double>(cell.pigment_rays + stained_rays)) {
        cell.pigment = true;
        cell.cell_class = CellClass::Negative;
      }
    }
    cell.left_out = static_cast<std::uint8_t>(
        (cell.nucleus_area_um2 < p.min_nucleus_area_um2 ? kLeftOutSmall : 0) |
        (cell.nucleus_area_um2 > p.max_nucleus_area_um2 ? kLeftOutLarge : 0) |
        (cell.neighbours < p.min_neighbours ? kLeftOutFewNeighbours : 0) |
        (cell.nucleus_elongation > p.max_nucleus_elongation ? kLeftOutElongated : 0) |
        (valid_rays * 2 < p.rays ? kLeftOutEdge : 0));
    cell.counted = cell.left_out == 0;
    cells.push_back(std::move(cell));
  }
  apply_cytoplasmic_pattern(cells, p);
  return cells;
}

}  // namespace ihc::scoring
