#include "ihc/engine/pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>

#include <opencv2/imgproc.hpp>
#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "ihc/engine/errors.hpp"
#include "ihc/scoring/chroma.hpp"
#include "ihc/scoring/stain_estimation.hpp"

namespace ihc::engine {
namespace {

// Long side of the overview used for the tissue mask: a 512 µm analysis tile at 40x spans
// about 50 of its pixels on a 100,000 px slide.
constexpr int kThumbnailSide = 1024;
// Grid rows per band of the processing order (TilePlan::order). Measured on the 42-core TMA slide
// (2 threads, the reader's 16 MiB cache): 8,417 JPEG decodes without the cache, 7,097 with it in
// row order, 6,666 in bands of 4 (6,266 with an unbounded cache).
constexpr int kTileBandRows = 4;

// Largest power of two not above `factor`, capped at 8 (what JPEG DCT scaling offers).
int dct_scale_for(double factor) {
  int scale = 1;
  while (scale < 8 && scale * 2 <= factor * 1.001) scale *= 2;
  return scale;
}

// Reads a region of level-0 coordinates at `d` level-0 pixels per output pixel, output size
// (out_w, out_h): from the finest level that is not finer than needed, with DCT-scaled decoding
// where the reader offers it (unless !dct: then the full-size decode every reader shares, as
// OpenSlide's), then area-averaged to the exact size.
// With `chroma` (the level's colour block, TilePlan::chroma_x) above 1 x 1 and the level read at
// full scale, the colour the file subsampled is put back on the level's own pixel grid, before
// any resampling (scoring/chroma.hpp); `as_stored` (optional) then receives the region without
// that, resampled the same way.
cv::Mat read_resampled(const tiling::Slide& slide, int level, double x0, double y0, double d, int out_w,
                       int out_h, bool dct, cv::Size chroma = {1, 1}, cv::Mat* as_stored = nullptr) {
  const double ds = slide.levels()[static_cast<std::size_t>(level)].downsample;
  const double r = d / ds;  // level pixels per output pixel
  const int scale = dct_scale_for(r);
  int w = static_cast<int>(std::lround(out_w * r));
  int h = static_cast<int>(std::lround(out_h * r));
  w = std::max(scale, (w + scale - 1) / scale * scale);
  h = std::max(scale, (h + scale - 1) / scale * scale);
  const auto x = static_cast<std::int64_t>(std::floor(x0)), y = static_cast<std::int64_t>(std::floor(y0));
  cv::Mat img = dct ? slide.read_region_scaled(level, x, y, w, h, scale)
                    : slide.tiling::Slide::read_region_scaled(level, x, y, w, h, scale);
  cv::Mat stored;
  if ((chroma.width > 1 || chroma.height > 1) && scale == 1) {
    if (as_stored) stored = img.clone();
    // The region's first pixel in the level's pixels, where the colour blocks start at 0.
    const auto level_px = [ds](std::int64_t l0) { return static_cast<int>(std::floor(static_cast<double>(l0) / ds + 1e-6)); };
    scoring::restore_subsampled_chroma(img, chroma.width, chroma.height, level_px(x), level_px(y));
  }
  const auto resampled = [&](cv::Mat m) {
    if (m.cols == out_w && m.rows == out_h) return m;
    cv::Mat out;
    cv::resize(m, out, cv::Size(out_w, out_h), 0, 0, m.cols >= out_w ? cv::INTER_AREA : cv::INTER_LINEAR);
    return out;
  };
  cv::Mat out = resampled(std::move(img));
  if (as_stored) *as_stored = stored.empty() ? out : resampled(std::move(stored));  // unchanged: the same pixels
  return out;
}

}  // namespace

cv::Mat read_thumbnail(const tiling::Slide& slide, int max_side, double* downsample_out, bool dct_decode, int threads,
                       cv::Mat* unreadable_out) {
  const auto& l0 = slide.levels().front();
  double d = std::max(1.0, static_cast<double>(std::max(l0.width, l0.height)) / max_side);
  const int level = slide.best_level_for_downsample(d);
  {
    // A whole number of decoded pixels per thumbnail pixel: the area average then takes OpenCV's
    // integer path (at a ratio like 1.95 its general path cost 260 M instructions, 8 % of
    // scoring an 8000 x 6000 slide). The thumbnail gets at most 2x smaller than max_side.
    const double ds = slide.levels()[static_cast<std::size_t>(level)].downsample;
    const int scale = dct_decode ? dct_scale_for(d / ds) : 1;
    const double k = std::ceil(d / ds / scale - 1e-6);
    d = std::max(d, k * scale * ds);
  }
  const int tw = std::max<int>(1, static_cast<int>(std::ceil(static_cast<double>(l0.width) / d)));
  const int th = std::max<int>(1, static_cast<int>(std::ceil(static_cast<double>(l0.height) / d)));
  cv::Mat thumb(th, tw, CV_8UC3, cv::Scalar(255, 255, 255));
  // Chunks of about 1024 pixels of the read level, in thumbnail pixels so that they tile
  // exactly, read in parallel (the overview is what the tiles wait for). Their size does not
  // depend on the thread count, and each thumbnail pixel averages the same decoded pixels
  // whatever the chunk: the overview is the same on any number of threads.
  const int chunk = std::max(16, static_cast<int>(1024 / std::max(1.0, d / slide.levels()[static_cast<std::size_t>(level)].downsample)));
  const int chunks_x = (tw + chunk - 1) / chunk, chunks_y = (th + chunk - 1) / chunk;
  // A damaged source tile fails its chunk: the chunk is read again in small pieces, and a piece
  // that still fails stays white here and is marked unreadable (scoring then tries its tiles and
  // counts those that fail, as on a slide whose overview comes from another level). Only when
  // nothing at all can be read is the error passed on.
  cv::Mat unreadable(th, tw, CV_8U, cv::Scalar(0));
  std::atomic<bool> any_read{false};
  std::string first_error;
  std::mutex error_mutex;
  const auto read_part = [&](int x, int y, int w, int h) {
    try {
      read_resampled(slide, level, x * d, y * d, d, w, h, dct_decode).copyTo(thumb(cv::Rect(x, y, w, h)));
      any_read = true;
      return true;
    } catch (const tiling::SlideError& e) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (first_error.empty()) first_error = e.what();
      return false;
    }
  };
  constexpr int kPiece = 32;  // thumbnail pixels
  for_each_tile(threads, static_cast<std::size_t>(chunks_x) * static_cast<std::size_t>(chunks_y), [&](std::size_t k) {
    const int tx = static_cast<int>(k % static_cast<std::size_t>(chunks_x)) * chunk;
    const int ty = static_cast<int>(k / static_cast<std::size_t>(chunks_x)) * chunk;
    const int cw = std::min(chunk, tw - tx), ch = std::min(chunk, th - ty);
    if (read_part(tx, ty, cw, ch)) return;
    for (int y = ty; y < ty + ch; y += kPiece)
      for (int x = tx; x < tx + cw; x += kPiece) {
        const int w = std::min(kPiece, tx + cw - x), h = std::min(kPiece, ty + ch - y);
        if (!read_part(x, y, w, h)) unreadable(cv::Rect(x, y, w, h)).setTo(255);
      }
  });
  if (!any_read && !first_error.empty()) throw tiling::SlideError(tiling::SlideError::Kind::Corrupt, first_error);
  if (downsample_out) *downsample_out = d;
  if (unreadable_out) *unreadable_out = unreadable;
  return thumb;
}

scoring::Decision decide(const SlideResult& result, const ScoreOptions& options) {
  if (!options.biopsy_rule()) return scoring::decide(result.percent, result.counts.total(), options.guideline, options.rules);
  const int min_cells = options.rules.biopsy_cluster_cells;
  return {scoring::biopsy_score(result.largest_cluster, min_cells), "cluster_cells", static_cast<double>(min_cells)};
}

// `format` with one %f conversion, given `fraction` as a percentage.
std::string with_percent(const char* format, double fraction) {
  char buf[300];
  std::snprintf(buf, sizeof buf, format, 100.0 * fraction);
  return buf;
}

void apply_guideline(SlideResult& result, const ScoreOptions& options) {
  result.percent = result.counts.percent();
  result.not_evaluable_reason.clear();
  const double failed_fraction =
      result.tiles_tissue > 0 ? static_cast<double>(result.tiles_failed) / static_cast<double>(result.tiles_tissue) : 0.0;
  if (result.tiles_tissue == 0) {
    result.not_evaluable_reason = "no tissue found on the slide";
  } else if (failed_fraction > options.max_failed_tile_fraction) {
    result.not_evaluable_reason = std::to_string(result.tiles_failed) + " of " +
                                  std::to_string(result.tiles_tissue) + " tissue tiles could not be read";
  } else if (result.colour.colour_fraction < options.stain_check.min_colour_fraction) {
    result.not_evaluable_reason = with_percent(
        "no colour: %.1f%% of the tissue shows any colour (a greyscale image?); HER2 is scored on brown DAB against a "
        "blue haematoxylin counterstain",
        result.colour.colour_fraction);
  } else if (result.eosin_fraction >= options.stain_check.max_eosin_fraction) {
    result.not_evaluable_reason = with_percent(
        "not a HER2 IHC stain: %.0f%% of the tissue is stained pink with eosin (an H&E slide?); HER2 is scored on DAB "
        "with a haematoxylin counterstain",
        result.eosin_fraction);
  } else if (result.colour.off_stain_fraction > options.stain_check.max_off_stain_fraction) {
    result.not_evaluable_reason = with_percent(
        "colours are not haematoxylin and DAB: %.0f%% of the stained tissue lies off the two stains (another stain, "
        "swapped colour channels, or wrong --stains?)",
        result.colour.off_stain_fraction);
  } else if (result.counts.total() == 0) {
    result.not_evaluable_reason = "no tumour cells found";
  }
  if (!result.not_evaluable_reason.empty()) {
    result.score = scoring::SlideScore::NotEvaluable;
    result.category = scoring::Her2Category::NotEvaluable;
    return;
  }
  result.score = decide(result, options).score;
  result.category = scoring::categorise(result.score, result.percent, options.rules, options.guideline);
}

double halo_um_for(const ScoreOptions& options) {
  return std::max(options.halo_um, options.cells.neighbourhood_um + options.cells.nucleus_radius_um);
}

TilePlan plan_geometry(const tiling::Slide& slide, const ScoreOptions& options) {
  if (!slide.mpp() || !(*slide.mpp() > 0))
    throw std::invalid_argument("the slide has no resolution (µm per pixel); give it with --mpp");
  if (!(options.analysis_mpp > 0) || options.tile_px < 64)
    throw std::invalid_argument("analysis resolution and tile size must be positive");
  TilePlan plan;
  const std::int64_t width = slide.levels().front().width, height = slide.levels().front().height;
  plan.mpp_slide = *slide.mpp();
  // Never upsample: a slide coarser than the analysis resolution is analysed as it is.
  plan.mpp_analysis = std::max(options.analysis_mpp, plan.mpp_slide);
  plan.downsample = plan.mpp_analysis / plan.mpp_slide;
  plan.read_level = slide.best_level_for_downsample(plan.downsample);
  plan.halo_px = static_cast<int>(std::ceil(halo_um_for(options) / plan.mpp_analysis));
  plan.dct_decode = !options.exact_decode;
  const tiling::Level& read = slide.levels()[static_cast<std::size_t>(plan.read_level)];
  if (dct_scale_for(plan.downsample / read.downsample) == 1) {  // read at full scale (read_resampled)
    plan.chroma_x = read.chroma_x;
    plan.chroma_y = read.chroma_y;
  }
  const double core_l0 = options.tile_px * plan.downsample;
  const auto nx = static_cast<std::int64_t>(std::ceil(static_cast<double>(width) / core_l0));
  const auto ny = static_cast<std::int64_t>(std::ceil(static_cast<double>(height) / core_l0));
  plan.tiles_total = nx * ny;
  return plan;
}

TilePlan plan_tiles(const tiling::Slide& slide, const ScoreOptions& options) {
  TilePlan plan = plan_geometry(slide, options);
  const std::int64_t width = slide.levels().front().width, height = slide.levels().front().height;
  const double core_l0 = options.tile_px * plan.downsample;
  const auto nx = static_cast<std::int64_t>(std::ceil(static_cast<double>(width) / core_l0));
  const auto ny = static_cast<std::int64_t>(std::ceil(static_cast<double>(height) / core_l0));
  cv::Mat unreadable;
  plan.thumbnail =
      read_thumbnail(slide, kThumbnailSide, &plan.thumbnail_downsample, plan.dct_decode, options.threads, &unreadable);
  cv::Mat mask = scoring::tissue_mask(plan.thumbnail, options.tissue);
  plan.eosin_fraction = scoring::eosin_fraction(plan.thumbnail, mask, options.stains, options.stain_check);
  plan.colour = scoring::colour_measures(plan.thumbnail, mask, options.stains, options.stain_check);
  // What the overview could not read is taken as tissue: its tiles are read (not filled as glass)
  // and those that fail are counted and reported.
  plan.overview_unreadable_fraction =
      static_cast<double>(cv::countNonZero(unreadable)) / static_cast<double>(unreadable.total());
  mask |= unreadable;
  plan.tissue = mask.clone();
  {
    // The glass colour: the per-channel median of the overview outside the tissue (255 when
    // there is too little glass to tell).
    scoring::BackgroundParams median;
    median.percentile = 50.0;
    median.min_i0 = 0.0;
    const auto glass = scoring::estimate_background(plan.thumbnail, mask, 255.0, median).per_channel;
    for (int c = 0; c < 3; ++c) plan.glass[c] = cv::saturate_cast<std::uint8_t>(glass[static_cast<std::size_t>(c)]);
  }
  if (!options.roi.empty()) {
    const cv::Rect2d slide_rect(0, 0, static_cast<double>(width), static_cast<double>(height));
    plan.roi_px2 = options.roi.area_within(slide_rect);
    // The scored polygons alone: what is left out (QuPath's Ignore*, ImageScope's negative
    // regions) only takes area away.
    const scoring::Region scored(options.roi.polygons());
    if (plan.roi_px2 <= 0) {
      char buf[300];
      if (!scored.empty() && scored.area_within(slide_rect) <= 0) {
        const cv::Rect2d b = scored.bounds();
        std::snprintf(buf, sizeof buf,
                      ": the region of interest (x %.0f to %.0f, y %.0f to %.0f level-0 px) lies outside the slide "
                      "(%lld x %lld px)",
                      b.x, b.x + b.width, b.y, b.y + b.height, static_cast<long long>(width), static_cast<long long>(height));
      } else {
        std::snprintf(buf, sizeof buf,
                      ": the regions it leaves out (%zu: Ignore* or Exclude annotations, or negative regions) cover "
                      "all of %s",
                      options.roi.excluded().size(), scored.empty() ? "the slide" : "its region of interest");
      }
      throw EngineError(ErrorKind::input, options.roi_source + buf);
    }
    // The shoelace area of the outlines differs from the area covered when an outline crosses
    // itself or polygons overlap: cells are counted by contains() (even-odd, united).
    if (!scored.empty()) {
      const double covered = scored.area_within(scored.bounds());
      plan.roi_crosses = std::abs(scored.area() - covered) > 0.02 * covered;
    }
    mask &= options.roi.mask(mask.size(), plan.thumbnail_downsample);
  }
  const double td = plan.thumbnail_downsample;
  auto edge = [&](std::int64_t i, std::int64_t limit) {
    return std::min(limit, static_cast<std::int64_t>(std::llround(static_cast<double>(i) * core_l0)));
  };
  std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> band_col_row;  // per core
  for (std::int64_t j = 0; j < ny; ++j) {
    for (std::int64_t i = 0; i < nx; ++i) {
      tiling::Rect core{edge(i, width), edge(j, height), 0, 0};
      core.w = edge(i + 1, width) - core.x;
      core.h = edge(j + 1, height) - core.y;
      const int mx0 = std::clamp(static_cast<int>(std::floor(static_cast<double>(core.x) / td)), 0, mask.cols - 1);
      const int my0 = std::clamp(static_cast<int>(std::floor(static_cast<double>(core.y) / td)), 0, mask.rows - 1);
      const int mx1 = std::clamp(static_cast<int>(std::ceil(static_cast<double>(core.x + core.w) / td)), mx0 + 1, mask.cols);
      const int my1 = std::clamp(static_cast<int>(std::ceil(static_cast<double>(core.y + core.h) / td)), my0 + 1, mask.rows);
      if (cv::countNonZero(mask(cv::Range(my0, my1), cv::Range(mx0, mx1))) > 0) {
        plan.cores.push_back(core);
        band_col_row.emplace_back(j / kTileBandRows, i, j);
      }
    }
  }
  plan.order.resize(plan.cores.size());
  std::iota(plan.order.begin(), plan.order.end(), std::size_t{0});
  std::stable_sort(plan.order.begin(), plan.order.end(),
                   [&](std::size_t a, std::size_t b) { return band_col_row[a] < band_col_row[b]; });
  return plan;
}

namespace {
struct TileGeometry {
  int core_w, core_h, width, height;
  double x0, y0;
};
TileGeometry geometry(const TilePlan& plan, const tiling::Rect& core) {
  TileGeometry g;
  g.core_w = static_cast<int>(std::ceil(static_cast<double>(core.w) / plan.downsample));
  g.core_h = static_cast<int>(std::ceil(static_cast<double>(core.h) / plan.downsample));
  g.width = g.core_w + 2 * plan.halo_px;
  g.height = g.core_h + 2 * plan.halo_px;
  g.x0 = static_cast<double>(core.x) - plan.halo_px * plan.downsample;
  g.y0 = static_cast<double>(core.y) - plan.halo_px * plan.downsample;
  return g;
}
// The part of a tile image that lies inside the slide (the rest is white padding).
cv::Rect valid_part(const TileGeometry& g, double d, std::int64_t width, std::int64_t height) {
  const int x0 = std::max(0, static_cast<int>(std::ceil(-g.x0 / d)));
  const int y0 = std::max(0, static_cast<int>(std::ceil(-g.y0 / d)));
  const int x1 = std::min(g.width, static_cast<int>(std::floor((static_cast<double>(width) - g.x0) / d)));
  const int y1 = std::min(g.height, static_cast<int>(std::floor((static_cast<double>(height) - g.y0) / d)));
  return {x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)};
}
}  // namespace

namespace {
// A tile's judged, folded and blurred tissue inside its core, from its final block flags.
void sum_quality_areas(TileResult& t) {
  t.tissue_um2 = t.fold_um2 = t.focus_um2 = 0;
  for (std::size_t b = 0; b < t.block_core_um2.size(); ++b) {
    const double a = t.block_core_um2[b];
    t.tissue_um2 += a;
    if (t.quality.flags[b] & scoring::kExcludedFold) t.fold_um2 += a;
    else if (t.quality.flags[b] & scoring::kExcludedFocus) t.focus_um2 += a;
  }
}
}  // namespace

std::vector<SlideCell> analyse_tile(const tiling::Slide& slide, const TilePlan& plan, const ScoreOptions& options,
                                    const tiling::Rect& core, cv::Mat* rgb_out, TileResult* areas_out) {
  const TileGeometry g = geometry(plan, core);
  const double d = plan.downsample;
  // Pictures (the report viewer, markup) show the tile as the file stores it, the analysis the
  // tile with its colour put back.
  cv::Mat as_stored;
  cv::Mat rgb = read_tile(slide, plan, core, true, rgb_out ? &as_stored : nullptr);
  const scoring::HematoxylinDab dec =
      scoring::deconvolve_for_cells(rgb, options.stains, options.counterstain_residual_weight);
  const auto width = slide.levels().front().width, height = slide.levels().front().height;
  const cv::Rect core_px(plan.halo_px, plan.halo_px, g.core_w, g.core_h);
  const cv::Rect valid = valid_part(g, d, width, height);
  const std::vector<scoring::Cell> cells =
      scoring::detect_cells_smoothed(dec.hematoxylin, dec.dab_smooth, plan.mpp_analysis, core_px, options.cell_params(),
                                     valid, areas_out ? &areas_out->stains : nullptr);
  const scoring::QualityMap quality =
      scoring::assess_quality(dec.hematoxylin, dec.dab, plan.mpp_analysis, options.quality, valid);
  if (areas_out && quality.block_px > 0) {
    // Judged tissue inside the core, per block (blocks straddle the core's edges).
    const double px_um2 = plan.mpp_analysis * plan.mpp_analysis;
    areas_out->block_core_um2.assign(quality.flags.size(), 0.0f);
    for (int by = 0; by < quality.rows; ++by)
      for (int bx = 0; bx < quality.cols; ++bx) {
        const std::size_t b = static_cast<std::size_t>(by) * static_cast<std::size_t>(quality.cols) + static_cast<std::size_t>(bx);
        if (!quality.tissue[b]) continue;
        const cv::Rect block(bx * quality.block_px, by * quality.block_px, quality.block_px, quality.block_px);
        areas_out->block_core_um2[b] = static_cast<float>(static_cast<double>((block & core_px & valid).area()) * px_um2);
      }
    areas_out->quality = quality;
    sum_quality_areas(*areas_out);
  }
  std::vector<SlideCell> out;
  out.reserve(cells.size());
  // Outlines stay inside the slide (viewers reject objects outside the image).
  const auto max_x = static_cast<double>(width), max_y = static_cast<double>(height);
  for (const auto& c : cells) {
    SlideCell sc;
    sc.x = static_cast<float>(g.x0 + (c.centre.x + 0.5) * d);
    sc.y = static_cast<float>(g.y0 + (c.centre.y + 0.5) * d);
    sc.completeness = c.completeness;
    sc.intensity_od = c.intensity_od;
    sc.nucleus_area_um2 = c.nucleus_area_um2;
    sc.cell_class = c.cell_class;
    sc.counted = c.counted;
    sc.left_out = c.left_out;
    sc.cytoplasmic = c.cytoplasmic;
    sc.pigment = c.pigment;
    sc.lateral = c.lateral;
    sc.block = quality.block_of(c.centre);
    sc.excluded = sc.block >= 0 ? quality.flags[static_cast<std::size_t>(sc.block)] : 0;
    for (const auto& pt : c.outline)
      sc.outline.emplace_back(static_cast<float>(std::clamp(g.x0 + (pt.x + 0.5) * d, 0.0, max_x)),
                              static_cast<float>(std::clamp(g.y0 + (pt.y + 0.5) * d, 0.0, max_y)));
    out.push_back(std::move(sc));
  }
  if (rgb_out) *rgb_out = std::move(as_stored);
  return out;
}

double tile_source_pixels(const tiling::Slide& slide, const TilePlan& plan, const tiling::Rect& core) {
  const TileGeometry g = geometry(plan, core);
  const double r = plan.downsample / slide.levels()[static_cast<std::size_t>(plan.read_level)].downsample;
  return g.width * r * g.height * r;
}

cv::Mat read_downsampled(const tiling::Slide& slide, double x0, double y0, double d, int out_w, int out_h) {
  return read_resampled(slide, slide.best_level_for_downsample(d), x0, y0, d, out_w, out_h, true);
}

cv::Mat read_tile(const tiling::Slide& slide, const TilePlan& plan, const tiling::Rect& core, bool restore_colour,
                  cv::Mat* as_stored) {
  const TileGeometry g = geometry(plan, core);
  const cv::Size chroma = restore_colour ? cv::Size(plan.chroma_x, plan.chroma_y) : cv::Size(1, 1);
  return read_resampled(slide, plan.read_level, g.x0, g.y0, plan.downsample, g.width, g.height, plan.dct_decode, chroma,
                        as_stored);
}

int worker_threads(int requested) {
  const int cores = std::max(1, tbb::info::default_concurrency());
  return requested > 0 ? std::min(requested, cores) : cores;
}

void for_each_tile(int threads, std::size_t n, const std::function<void(std::size_t)>& body) {
  tbb::task_arena arena(worker_threads(threads));
  arena.execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, n, 1),
        [&](const tbb::blocked_range<std::size_t>& range) {
          for (std::size_t k = range.begin(); k != range.end(); ++k) body(k);
        },
        tbb::simple_partitioner());
  });
}

std::int64_t request_overlap_l0(const TilePlan& plan) {
  return static_cast<std::int64_t>(std::ceil(2.0 * plan.halo_px * plan.downsample));
}

// Widened by a pixel here and each source tile by another in the reader: with one margin only, a
// synthetic slide's detected cells changed (6,110 against 6,111 reading every tile). Not with
// exact decoding: that is the reference path, identical through every reader.
cv::Mat tissue_read_mask(const TilePlan& plan, const ScoreOptions& options) {
  if (options.read_glass || options.exact_decode || plan.tissue.empty()) return {};
  cv::Mat wide;
  cv::dilate(plan.tissue, wide, cv::Mat::ones(3, 3, CV_8U));
  return wide;
}

ScopedReadHints::ScopedReadHints(const tiling::Slide& slide, const TilePlan& plan, const ScoreOptions& options)
    : slide_(slide) {
  if (const cv::Mat wide = tissue_read_mask(plan, options); !wide.empty())
    slide.set_tissue_hint(wide, plan.thumbnail_downsample, plan.glass);
  slide.set_request_overlap(request_overlap_l0(plan));
}

ScopedReadHints::~ScopedReadHints() {
  slide_.set_tissue_hint(cv::Mat(), 0, {});
  slide_.set_request_overlap(0);
}

SlideResult score_slide(const tiling::Slide& slide, const ScoreOptions& options, const TileProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  cv::setNumThreads(0);  // OpenCV stays single-threaded inside a tile; TBB runs the tiles.
  const TilePlan plan = plan_tiles(slide, options);
  const ScopedReadHints hints(slide, plan, options);

  SlideResult result;
  result.path = slide.path().string();
  result.vendor = slide.vendor();
  result.reader = slide.reader();
  result.width = slide.levels().front().width;
  result.height = slide.levels().front().height;
  result.levels = static_cast<int>(slide.levels().size());
  result.mpp_slide = plan.mpp_slide;
  result.mpp_analysis = plan.mpp_analysis;
  result.read_level = plan.read_level;
  result.chroma_x = plan.chroma_x;
  result.chroma_y = plan.chroma_y;
  result.tiles_total = plan.tiles_total;
  result.threads = worker_threads(options.threads);
  result.thumbnail = plan.thumbnail;
  result.thumbnail_downsample = plan.thumbnail_downsample;
  result.eosin_fraction = plan.eosin_fraction;
  result.slide_warnings = slide.warnings();
  result.roi_px2 = plan.roi_px2;
  if (plan.overview_unreadable_fraction > 0)
    result.slide_warnings.push_back(with_percent(
        "%.1f %% of the slide's overview could not be read (damaged tiles): the tiles there were tried, and those "
        "that failed are counted in tiles.failed", plan.overview_unreadable_fraction));
  if (plan.roi_crosses) {
    result.slide_warnings.push_back(options.roi_source +
                                    ": the region of interest's outlines cross themselves or overlap; its inside is "
                                    "taken by the even-odd rule within each outline, united over outlines (area "
                                    "reported is the area so covered)");
  }
  result.colour = plan.colour;
  for (const auto& core : plan.cores) {
    TileResult t;
    t.region = core;
    result.tiles.push_back(std::move(t));
  }
  result.tiles_tissue = static_cast<std::int64_t>(result.tiles.size());

  auto score_tile = [&](TileResult& t) {
    cv::Mat rgb;
    auto cells = analyse_tile(slide, plan, options, t.region, options.on_tile_image ? &rgb : nullptr, &t);
    if (options.on_tile_image && !rgb.empty()) {
      const int core_w = static_cast<int>(std::lround(static_cast<double>(t.region.w) / plan.downsample));
      const int core_h = static_cast<int>(std::lround(static_cast<double>(t.region.h) / plan.downsample));
      const cv::Rect core_px = cv::Rect(plan.halo_px, plan.halo_px, core_w, core_h) & cv::Rect(0, 0, rgb.cols, rgb.rows);
      options.on_tile_image(t.region, rgb(core_px));
    }
    for (auto& c : cells) {
      ++t.cells_detected;
      for (int b = 0; b < scoring::kLeftOutRules; ++b) t.left_out_by_rule[static_cast<std::size_t>(b)] += (c.left_out >> b) & 1;
      if (!c.counted || (!options.roi.empty() && !options.roi.contains(c.x, c.y))) {
        if (options.keep_left_out) t.left_out_cells.push_back(std::move(c));
        continue;
      }
      t.tally.push_back({c.block, c.cell_class, c.cytoplasmic, c.pigment, c.lateral, c.x, c.y});
      if (options.keep_cells) t.cells.push_back(std::move(c));
    }
  };
  const bool biopsy = options.biopsy_rule();
  // Once the blocks are final: tumour cells in a fold or a blurred block are reported, not scored.
  auto count_tile = [&](TileResult& t) {
    for (std::size_t i = 0; i < t.tally.size(); ++i) {
      const TileResult::Tally& c = t.tally[i];
      const std::uint8_t excluded = c.block >= 0 ? t.quality.flags[static_cast<std::size_t>(c.block)] : 0;
      if (options.keep_cells) t.cells[i].excluded = excluded;
      if (excluded) {
        ++((excluded & scoring::kExcludedFold) ? t.cells_fold : t.cells_focus);
        continue;
      }
      ++t.counts.by_class[static_cast<std::size_t>(c.cell_class)];
      t.cells_lateral += c.lateral && c.cell_class != scoring::CellClass::Negative ? 1 : 0;
      if (biopsy && c.cell_class != scoring::CellClass::Negative)
        t.stained.push_back({c.x * result.mpp_slide, c.y * result.mpp_slide, c.cell_class});
      t.cells_cytoplasmic += c.cytoplasmic ? 1 : 0;
      t.cells_pigment += c.pigment ? 1 : 0;
    }
    t.tally = {};
  };

  std::atomic<std::int64_t> done{0};
  const std::int64_t todo = result.tiles_tissue;
  for_each_tile(result.threads, result.tiles.size(), [&](std::size_t i) {
    TileResult& t = result.tiles[plan.order[i]];
    try {
      score_tile(t);
    } catch (const std::exception& e) {
      TileResult failed;
      failed.region = t.region;
      failed.failed = true;
      failed.error = e.what();
      t = std::move(failed);
    }
    const auto n = done.fetch_add(1) + 1;
    if (progress) progress(n, todo);
  });

  // A tile blurred all over is sharp next to itself: every tile's blocks are also compared with
  // the slide's median block sharpness (quality.hpp). Done after all tiles, in grid order.
  if (options.quality.focus && options.quality.focus_slide_reference) {
    std::vector<const scoring::QualityMap*> maps;
    for (const auto& t : result.tiles)
      if (!t.failed) maps.push_back(&t.quality);
    result.focus_reference = scoring::median_sharpness(maps, options.quality);
    if (result.focus_reference > 0)
      for (auto& t : result.tiles) {
        if (t.failed) continue;
        const int added = scoring::flag_blurred_against(t.quality, result.focus_reference, options.quality);
        result.blocks_focus_slide += added;
        if (added > 0) sum_quality_areas(t);
      }
  }
  for (auto& t : result.tiles)
    if (!t.failed) count_tile(t);

  // Reduction in grid order: the same sums whatever the scheduling.
  std::vector<scoring::ClusterCell> stained;
  for (auto& t : result.tiles) {
    stained.insert(stained.end(), t.stained.begin(), t.stained.end());
    t.stained = {};
  }
  if (biopsy) result.largest_cluster = scoring::largest_clusters(stained, options.rules.cohesive_um);
  for (const auto& t : result.tiles) {
    if (t.failed) {
      ++result.tiles_failed;
      continue;
    }
    ++result.tiles_analysed;
    result.counts += t.counts;
    result.cells_detected += t.cells_detected;
    for (std::size_t b = 0; b < result.left_out_by_rule.size(); ++b) result.left_out_by_rule[b] += t.left_out_by_rule[b];
    result.cells_cytoplasmic += t.cells_cytoplasmic;
    result.cells_pigment += t.cells_pigment;
    result.cells_lateral += t.cells_lateral;
    result.tiles_cytoplasmic += t.cells_cytoplasmic > 0 ? 1 : 0;
    result.cells_fold += t.cells_fold;
    result.cells_focus += t.cells_focus;
    result.tiles_fold += t.fold_um2 > 0 ? 1 : 0;
    result.tiles_focus += t.focus_um2 > 0 ? 1 : 0;
    result.tissue_um2 += t.tissue_um2;
    result.fold_um2 += t.fold_um2;
    result.focus_um2 += t.focus_um2;
  }
  std::vector<double> dab_in_h, h_in_dab;
  for (const auto& t : result.tiles)
    if (!t.failed) {
      dab_in_h.push_back(t.stains.dab_in_hematoxylin);
      h_in_dab.push_back(t.stains.hematoxylin_in_dab);
    }
  const auto median = [](std::vector<double>& v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  result.dab_in_hematoxylin = median(dab_in_h);
  result.hematoxylin_in_dab = median(h_in_dab);
  apply_guideline(result, options);
  result.tile_reads_skipped = slide.tile_reads_skipped();
  result.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace ihc::engine
