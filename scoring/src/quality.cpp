#include "ihc/scoring/quality.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace ihc::scoring {
namespace {

constexpr int kBins = 512;               // floor histogram: 0 .. kBins * kBinOd
constexpr float kBinOd = 0.002f;
// Every other quarter-resolution row is read: a 48 µm block still has about 300 samples, at
// half the cost.
constexpr int kRowStep = 2;

// Keeps only the candidate blocks (flags & bit) in 4-connected groups of at least min_blocks.
void drop_small_groups(QualityMap& m, std::uint8_t bit, int min_blocks) {
  const int n = m.cols * m.rows;
  std::vector<int> group(static_cast<std::size_t>(n), -1), stack, members;
  for (int start = 0; start < n; ++start) {
    if (!(m.flags[static_cast<std::size_t>(start)] & bit) || group[static_cast<std::size_t>(start)] >= 0) continue;
    members.clear();
    stack.assign(1, start);
    group[static_cast<std::size_t>(start)] = start;
    while (!stack.empty()) {
      const int k = stack.back();
      stack.pop_back();
      members.push_back(k);
      const int bx = k % m.cols, by = k / m.cols;
      const std::array<int, 4> next{bx > 0 ? k - 1 : -1, bx + 1 < m.cols ? k + 1 : -1, by > 0 ? k - m.cols : -1,
                                    by + 1 < m.rows ? k + m.cols : -1};
      for (const int q : next)
        if (q >= 0 && (m.flags[static_cast<std::size_t>(q)] & bit) && group[static_cast<std::size_t>(q)] < 0) {
          group[static_cast<std::size_t>(q)] = start;
          stack.push_back(q);
        }
    }
    if (static_cast<int>(members.size()) < min_blocks)
      for (const int k : members) m.flags[static_cast<std::size_t>(k)] &= static_cast<std::uint8_t>(~bit);
  }
}

}  // namespace

QualityMap assess_quality(const cv::Mat& h_half, const cv::Mat& dab, double mpp, const QualityParams& p,
                          const cv::Rect& valid_region) {
  QualityMap m;
  if (!p.folds && !p.focus) return m;
  CV_Assert(h_half.type() == CV_32F && dab.type() == CV_32F && mpp > 0);
  CV_Assert(h_half.rows == std::max(1, dab.rows / 2) && h_half.cols == std::max(1, dab.cols / 2));
  const int hw = h_half.cols, hh = h_half.rows;
  // Block side in half-resolution pixels, even so that blocks hold whole quarter-resolution pixels.
  const int bh = 2 * std::max(1, static_cast<int>(std::lround(p.block_um / (4.0 * mpp))));
  m.block_px = 2 * bh;
  m.cols = (hw + bh - 1) / bh;
  m.rows = (hh + bh - 1) / bh;
  const std::size_t nb = static_cast<std::size_t>(m.cols) * static_cast<std::size_t>(m.rows);
  m.flags.assign(nb, 0);
  m.tissue.assign(nb, 0);
  m.floor_od.assign(nb, 0.0f);
  m.floor_h.assign(nb, 0.0f);
  m.floor_dab.assign(nb, 0.0f);
  m.sharpness.assign(nb, -1.0f);

  // Statistics at quarter resolution (2 x 2 means of the half-resolution H; DAB as the 2 x 2
  // mean at the centre of each 4 x 4 full-resolution cell: a quarter of the reads, enough for a
  // percentile) over the valid region; the fine-scale edge energy on the half-resolution H,
  // evaluated at every other pixel of every other row (a sample of the block, a quarter of the work).
  const cv::Rect full_valid =
      valid_region.area() > 0 ? (valid_region & cv::Rect(0, 0, dab.cols, dab.rows)) : cv::Rect(0, 0, dab.cols, dab.rows);
  const int vx0 = (full_valid.x + 3) / 4, vy0 = (full_valid.y + 3) / 4;
  const int vx1 = std::min(hw / 2, (full_valid.x + full_valid.width) / 4);
  const int vy1 = std::min(hh / 2, (full_valid.y + full_valid.height) / 4);

  std::vector<int> tissue_px(nb, 0), pixels(nb, 0);
  std::vector<int> hist_h(p.folds ? nb * kBins : 0, 0), hist_d(p.folds ? nb * kBins : 0, 0);
  std::vector<double> fine(nb, 0.0), coarse(nb, 0.0), coarse_sq(nb, 0.0);
  std::vector<int> fine_n(nb, 0), coarse_n(nb, 0);
  const float tissue_od = static_cast<float>(p.tissue_od);
  auto bin_of = [](float v) { return static_cast<std::size_t>(std::min(kBins - 1, static_cast<int>(v * (1.0f / kBinOd)))); };
  // Per block column, the run of x it holds: no division per pixel, and the sums are kept in
  // floats for one row of one block, then added to the block's doubles.
  for (int y = vy0; y < vy1; y += kRowStep) {
    const float* h0 = h_half.ptr<float>(2 * y);
    const float* h1 = h_half.ptr<float>(2 * y + 1);
    const float* d0 = dab.ptr<float>(4 * y + 1);
    const float* d1 = dab.ptr<float>(4 * y + 2);
    // Fine energy on half-resolution row 2y + 1 (its neighbours 2y and 2y + 2 exist when y + 1 < hh / 2).
    const float* hu = h0;
    const float* hm = h1;
    const float* hd = h_half.ptr<float>(std::min(2 * y + 2, hh - 1));
    const bool fine_row = p.focus && 2 * y + 2 < hh;
    const std::size_t row0 = static_cast<std::size_t>((2 * y) / bh) * static_cast<std::size_t>(m.cols);
    for (int xs = vx0; xs < vx1;) {
      const int bxi = (2 * xs) / bh;
      const int xe = std::min(vx1, (bxi + 1) * bh / 2);  // first x of the next block column
      const std::size_t b = row0 + static_cast<std::size_t>(bxi);
      float s_h = 0, s_hh = 0, s_fine = 0;
      int n_tissue = 0, n_fine = 0;
      for (int x = xs; x < xe; ++x) {
        const float hq = 0.25f * (h0[2 * x] + h0[2 * x + 1] + h1[2 * x] + h1[2 * x + 1]);
        const float dq = std::max(0.0f, 0.25f * (d0[4 * x + 1] + d0[4 * x + 2] + d1[4 * x + 1] + d1[4 * x + 2]));
        const float hpos = std::max(0.0f, hq);
        s_h += hq;
        s_hh += hq * hq;
        const int t = hpos + dq >= tissue_od ? 1 : 0;
        n_tissue += t;
        if (p.folds && t) {
          ++hist_h[b * kBins + bin_of(hpos)];
          ++hist_d[b * kBins + bin_of(dq)];
        }
        const int cx = 2 * x + 1;
        const int f = t & (fine_row && cx + 1 < hw ? 1 : 0);
        if (f) {
          const float r = hm[cx] - 0.25f * (hm[cx - 1] + hm[cx + 1] + hu[cx] + hd[cx]);
          s_fine += r * r;
        }
        n_fine += f;
      }
      pixels[b] += xe - xs;
      coarse[b] += static_cast<double>(s_h);
      coarse_sq[b] += static_cast<double>(s_hh);
      tissue_px[b] += n_tissue;
      fine[b] += static_cast<double>(s_fine);
      fine_n[b] += n_fine;
      xs = xe;
    }
  }
  for (std::size_t b = 0; b < nb; ++b) coarse_n[b] = pixels[b];

  // Judge the blocks.
  const int block_area = (bh / 2) * ((bh / 2 + kRowStep - 1) / kRowStep);  // samples of a whole block
  std::vector<float> floors, sharp;
  for (std::size_t b = 0; b < nb; ++b) {
    if (tissue_px[b] < p.min_tissue_fraction * block_area || tissue_px[b] == 0) continue;
    m.tissue[b] = 1;
    if (p.folds) {
      const int rank = std::max(1, static_cast<int>(std::ceil(p.fold_floor_percentile / 100.0 * tissue_px[b])));
      auto percentile = [&](const int* h) {
        int seen = 0, bin = 0;
        while (bin < kBins - 1 && seen + h[static_cast<std::size_t>(bin)] < rank) seen += h[static_cast<std::size_t>(bin++)];
        return (static_cast<float>(bin) + 0.5f) * kBinOd;
      };
      m.floor_h[b] = percentile(&hist_h[b * kBins]);
      m.floor_dab[b] = percentile(&hist_d[b * kBins]);
      m.floor_od[b] = m.floor_h[b] + m.floor_dab[b];
      floors.push_back(m.floor_od[b]);
    }
    if (p.focus && fine_n[b] > 0 && coarse_n[b] > 1) {
      const double n = coarse_n[b], mean = coarse[b] / n;
      const double var = std::max(0.0, coarse_sq[b] / n - mean * mean);
      if (var >= p.focus_min_contrast_od * p.focus_min_contrast_od) {
        m.sharpness[b] = static_cast<float>(fine[b] / fine_n[b] / var);
        sharp.push_back(m.sharpness[b]);
      }
    }
  }
  if (p.focus && !sharp.empty()) {
    const auto mid = sharp.begin() + static_cast<std::ptrdiff_t>(sharp.size() / 2);
    std::nth_element(sharp.begin(), mid, sharp.end());
    m.reference_sharpness = *mid;
    for (std::size_t b = 0; b < nb; ++b)
      if (m.sharpness[b] >= 0 && m.sharpness[b] < p.focus_relative_sharpness * m.reference_sharpness)
        m.flags[b] |= kExcludedFocus;
  }
  if (p.focus) drop_small_groups(m, kExcludedFocus, p.focus_min_blocks);
  if (p.folds && !floors.empty()) {
    auto median = [](std::vector<float> v) {
      const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
      std::nth_element(v.begin(), mid, v.end());
      return static_cast<double>(*mid);
    };
    std::vector<float> fh, fd;
    for (std::size_t k = 0; k < nb; ++k)
      if (m.tissue[k]) {
        fh.push_back(m.floor_h[k]);
        fd.push_back(m.floor_dab[k]);
      }
    m.reference_floor_od = median(floors);
    m.reference_floor_h = median(fh);
    m.reference_floor_dab = median(fd);
    // Two layers raise every stain's floor by about the same factor. The haematoxylin floor
    // must reach fold_ratio x the tile's (like with like: a dark DAB sheet does not raise it),
    // and the DAB floor must have risen in step, within a factor fold_max_imbalance either way
    // (a DAB-rich epithelium, or a sheet of dense nuclei in unstained tissue, raises one stain
    // far more than the other). fold_dab_epsilon_od keeps colourless DAB floors from making
    // noisy ratios.
    const double e = p.fold_dab_epsilon_od;
    for (std::size_t k = 0; k < nb; ++k) {
      if (!m.tissue[k] || (m.flags[k] & kExcludedFocus) || m.floor_h[k] < p.fold_min_h_od) continue;
      const double rh = m.floor_h[k] / std::max(1e-3, m.reference_floor_h);
      const double rd = (m.floor_dab[k] + e) / (m.reference_floor_dab + e);
      if (rh >= p.fold_ratio && rh <= p.fold_max_imbalance * rd && rd <= p.fold_max_imbalance * rh)
        m.flags[k] |= kExcludedFold;
    }
    drop_small_groups(m, kExcludedFold, p.fold_min_blocks);
    // A fold's edge runs through blocks whose floor still comes from the single layer beside
    // it: the tissue blocks touching a fold (8-connected) are taken with it.
    if (p.fold_grow_edge) {
      std::vector<std::uint8_t> grown = m.flags;
      for (int by = 0; by < m.rows; ++by)
        for (int bx = 0; bx < m.cols; ++bx) {
          const std::size_t k = static_cast<std::size_t>(by * m.cols + bx);
          if (!(m.flags[k] & kExcludedFold)) continue;
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
              const int x = bx + dx, y = by + dy;
              if (x < 0 || y < 0 || x >= m.cols || y >= m.rows) continue;
              const std::size_t q = static_cast<std::size_t>(y * m.cols + x);
              if (m.tissue[q] && !(m.flags[q] & kExcludedFocus)) grown[q] |= kExcludedFold;
            }
        }
      m.flags = std::move(grown);
    }
  }
  return m;
}

double median_sharpness(const std::vector<const QualityMap*>& maps, const QualityParams& p) {
  std::vector<float> s;
  for (const QualityMap* m : maps)
    for (std::size_t b = 0; b < m->sharpness.size(); ++b)
      if (m->tissue[b] && m->sharpness[b] >= 0) s.push_back(m->sharpness[b]);
  if (s.empty() || static_cast<int>(s.size()) < p.focus_slide_min_blocks) return -1;
  // The median of a multiset does not depend on the order it was gathered in.
  const auto mid = s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2);
  std::nth_element(s.begin(), mid, s.end());
  return *mid;
}

int flag_blurred_against(QualityMap& m, double reference, const QualityParams& p) {
  if (!p.focus || !(reference > 0) || m.block_px <= 0) return 0;
  const std::vector<std::uint8_t> before = m.flags;
  const float limit = static_cast<float>(p.focus_relative_sharpness * reference);
  for (std::size_t b = 0; b < m.flags.size(); ++b)
    if (m.tissue[b] && m.sharpness[b] >= 0 && m.sharpness[b] < limit && !(m.flags[b] & kExcludedFold))
      m.flags[b] |= kExcludedFocus;
  // A block the tile's own rule flagged stays flagged: its group can only have grown.
  drop_small_groups(m, kExcludedFocus, p.focus_min_blocks);
  int added = 0;
  for (std::size_t b = 0; b < m.flags.size(); ++b)
    added += (m.flags[b] & kExcludedFocus) && !(before[b] & kExcludedFocus) ? 1 : 0;
  return added;
}

}  // namespace ihc::scoring
