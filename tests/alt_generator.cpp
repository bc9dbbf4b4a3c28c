// Independent HER2 IHC field generator; see alt_generator.hpp for what it draws and why.
#include "alt_generator.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace ihc::test {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kReferencePixelUm = 0.5;  // DOMAIN.md bands are measured at about 0.5 µm/px
constexpr double kReferenceBlurUm = 0.4;   // ... after a scanner blur of about this sigma
constexpr double kGridUm = 1.0;            // occupancy grid for placing cells
constexpr double kMarginUm = 14.0;         // cells are placed this far beyond the image

using Rng = std::mt19937_64;

double uniform(Rng& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

// Smooth random field: value noise on a coarse grid (spacing `scale` µm) with quintic fade,
// two octaves. Zero mean, standard deviation about 0.6.
class SmoothField {
 public:
  SmoothField(Rng& rng, double x0, double y0, double w, double h, double scale)
      : x0_(x0), y0_(y0), scale_(scale) {
    for (int o = 0; o < 2; ++o) {
      const double s = scale / (1 << o);
      Grid g;
      g.nx = static_cast<int>(std::ceil(w / s)) + 3;
      g.ny = static_cast<int>(std::ceil(h / s)) + 3;
      g.scale = s;
      g.v.resize(static_cast<std::size_t>(g.nx) * g.ny);
      std::normal_distribution<double> n(0.0, 1.0);
      for (auto& v : g.v) v = n(rng);
      grids_.push_back(std::move(g));
    }
  }
  double operator()(double x, double y) const {
    double sum = 0, weight = 1;
    for (const auto& g : grids_) {
      sum += weight * g.at((x - x0_) / g.scale + 1.0, (y - y0_) / g.scale + 1.0);
      weight *= 0.5;
    }
    return sum;
  }

 private:
  struct Grid {
    int nx = 0, ny = 0;
    double scale = 1;
    std::vector<double> v;
    static double fade(double t) { return t * t * t * (t * (t * 6 - 15) + 10); }
    double value(int i, int j) const {
      i = std::clamp(i, 0, nx - 1);
      j = std::clamp(j, 0, ny - 1);
      return v[static_cast<std::size_t>(j) * nx + i];
    }
    double at(double u, double w) const {
      const double fu = std::floor(u), fw = std::floor(w);
      const int i = static_cast<int>(fu), j = static_cast<int>(fw);
      const double tu = fade(u - fu), tw = fade(w - fw);
      const double a = value(i, j) * (1 - tu) + value(i + 1, j) * tu;
      const double b = value(i, j + 1) * (1 - tu) + value(i + 1, j + 1) * tu;
      return a * (1 - tw) + b * tw;
    }
  };
  double x0_, y0_, scale_;
  std::vector<Grid> grids_;
};

enum Region : std::uint8_t { kTumour = 0, kStroma = 1, kLumen = 2, kGlass = 3 };

std::array<double, 3> normalised(std::array<double, 3> v) {
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (!(n > 0)) throw std::invalid_argument("alt generator: zero stain vector");
  for (auto& c : v) c /= n;
  return v;
}

// Tilts unit vector v by `deg` degrees towards a random direction perpendicular to it.
std::array<double, 3> tilt(const std::array<double, 3>& v, double deg, Rng& rng) {
  if (deg == 0) return v;
  std::normal_distribution<double> n(0.0, 1.0);
  std::array<double, 3> r{n(rng), n(rng), n(rng)};
  const double d = r[0] * v[0] + r[1] * v[1] + r[2] * v[2];
  for (int c = 0; c < 3; ++c) r[c] -= d * v[c];
  r = normalised(r);
  const double t = deg * kPi / 180.0;
  std::array<double, 3> out{};
  for (int c = 0; c < 3; ++c) out[c] = std::cos(t) * v[c] + std::sin(t) * r[c];
  for (auto& c : out) c = std::max(c, 0.01);  // optical densities stay positive
  return normalised(out);
}

struct Arc {
  double start_deg, end_deg;  // parametric angle on the ellipse
};

// `n` arcs covering `coverage` of the outline, separated by n random gaps.
std::vector<Arc> make_arcs(double coverage, int n, Rng& rng) {
  if (coverage >= 0.999) return {{0.0, 360.0}};
  std::vector<double> arc_w(n), gap_w(n);
  double sa = 0, sg = 0;
  for (int i = 0; i < n; ++i) {
    arc_w[i] = uniform(rng, 0.5, 1.5);
    gap_w[i] = uniform(rng, 0.5, 1.5);
    sa += arc_w[i];
    sg += gap_w[i];
  }
  std::vector<Arc> arcs;
  double t = uniform(rng, 0.0, 360.0);
  for (int i = 0; i < n; ++i) {
    const double len = 360.0 * coverage * arc_w[i] / sa;
    arcs.push_back({t, t + len});
    t += len + 360.0 * (1 - coverage) * gap_w[i] / sg;
  }
  return arcs;
}

struct CellSpec {
  double cx_um, cy_um, a_um, b_um, angle_rad;
  double nx_um, ny_um;                 // nucleus centre
  std::vector<cv::Point2d> nucleus;    // polygon, µm, absolute
  double h_nucleus, h_cyto, dab_cyto;
  double membrane_amp = 0;             // DAB amplitude of the line (before blur)
  double membrane_peak = 0;            // designed peak at the reference resolution
  double coverage = 0;
  int thickness_sub = 1;
  std::vector<Arc> arcs;
  std::array<double, 6> mod{};         // along-outline modulation: 3 harmonics (amp, phase)
  bool blush = false;
  bool cytoplasmic_stain = false;
  scoring::CellClass cls = scoring::CellClass::Negative;
};

bool ellipse_contains(double dx, double dy, double a, double b, double ca, double sa) {
  const double u = dx * ca + dy * sa, v = -dx * sa + dy * ca;
  return (u * u) / (a * a) + (v * v) / (b * b) <= 1.0;
}

// Occupancy grid in µm units: -1 blocked region, 0 free tumour, >0 cell id.
struct Occupancy {
  int nx = 0, ny = 0;
  double x0 = 0, y0 = 0;  // µm of grid cell (0, 0)'s corner
  std::vector<int> label;
  int& at(int i, int j) { return label[static_cast<std::size_t>(j) * nx + i]; }

  struct Test {
    int area = 0, overlap = 0, blocked = 0;
  };
  template <class F>
  void for_ellipse(double cx, double cy, double a, double b, double ang, F&& f) {
    const double ca = std::cos(ang), sa = std::sin(ang);
    const double r = std::max(a, b);
    const int i0 = std::max(0, static_cast<int>(std::floor((cx - r - x0) / kGridUm)));
    const int i1 = std::min(nx - 1, static_cast<int>(std::ceil((cx + r - x0) / kGridUm)));
    const int j0 = std::max(0, static_cast<int>(std::floor((cy - r - y0) / kGridUm)));
    const int j1 = std::min(ny - 1, static_cast<int>(std::ceil((cy + r - y0) / kGridUm)));
    for (int j = j0; j <= j1; ++j)
      for (int i = i0; i <= i1; ++i) {
        const double x = x0 + (i + 0.5) * kGridUm, y = y0 + (j + 0.5) * kGridUm;
        if (ellipse_contains(x - cx, y - cy, a, b, ca, sa)) f(at(i, j));
      }
  }
  Test test(double cx, double cy, double a, double b, double ang, int self) {
    Test t;
    for_ellipse(cx, cy, a, b, ang, [&](int v) {
      ++t.area;
      if (v < 0) ++t.blocked;
      else if (v > 0 && v != self) ++t.overlap;
    });
    return t;
  }
  void paint(double cx, double cy, double a, double b, double ang, int from, int to) {
    for_ellipse(cx, cy, a, b, ang, [&](int& v) {
      if (v == from) v = to;
    });
  }
};

// Renders one shape onto a supersampled patch and area-averages it into target-resolution
// coverage (0..1). Returns the patch origin in map pixels through `origin`.
struct PatchGeom {
  int x0 = 0, y0 = 0, w = 0, h = 0;  // in map pixels
  int ss = 1;
};

PatchGeom patch_for(double cx_px, double cy_px, double radius_px, int ss, const cv::Size& map) {
  PatchGeom g;
  g.ss = ss;
  g.x0 = std::max(0, static_cast<int>(std::floor(cx_px - radius_px)) - 2);
  g.y0 = std::max(0, static_cast<int>(std::floor(cy_px - radius_px)) - 2);
  const int x1 = std::min(map.width, static_cast<int>(std::ceil(cx_px + radius_px)) + 3);
  const int y1 = std::min(map.height, static_cast<int>(std::ceil(cy_px + radius_px)) + 3);
  g.w = std::max(0, x1 - g.x0);
  g.h = std::max(0, y1 - g.y0);
  return g;
}

constexpr int kShift = 4;  // fixed-point bits for OpenCV drawing
cv::Point fixed_point(double x_sub, double y_sub) {
  return {static_cast<int>(std::lround(x_sub * (1 << kShift))), static_cast<int>(std::lround(y_sub * (1 << kShift)))};
}

cv::Mat downsample(const cv::Mat& sub8, const PatchGeom& g) {
  cv::Mat f;
  sub8.convertTo(f, CV_32F, 1.0 / 255.0);
  if (g.ss == 1) return f;
  cv::Mat out;
  cv::resize(f, out, cv::Size(g.w, g.h), 0, 0, cv::INTER_AREA);
  return out;
}

// OpenCV's thick strokes are wider than the thickness asked for (thickness 5 covers about 7
// pixels). Measures the real width of each thickness once on a large ellipse and returns the
// thickness whose stroke is closest to `width_px`.
int stroke_thickness_for(double width_px) {
  static const std::vector<double> measured = [] {
    std::vector<double> w(49, 0.0);
    const double a = 300, b = 220;
    const double h = (a - b) * (a - b) / ((a + b) * (a + b));
    const double perimeter = kPi * (a + b) * (1 + 3 * h / (10 + std::sqrt(4 - 3 * h)));
    for (int t = 1; t <= 48; ++t) {
      cv::Mat m(800, 800, CV_8U, cv::Scalar(0));
      cv::ellipse(m, cv::Point(400 << kShift, 400 << kShift), cv::Size(300 << kShift, 220 << kShift), 30, 0, 360,
                  cv::Scalar(255), t, cv::LINE_8, kShift);
      w[t] = cv::countNonZero(m) / perimeter;
    }
    return w;
  }();
  int best = 1;
  for (int t = 1; t <= 48; ++t)
    if (std::abs(measured[t] - width_px) < std::abs(measured[best] - width_px)) best = t;
  return best;
}

}  // namespace

double membrane_peak_gain(double width_um, double sigma_um, double pixel_um) {
  // Line profile after blur: box(width) * gauss(sigma), then averaged over one pixel.
  const double s = sigma_um * std::sqrt(2.0);
  auto profile = [&](double x) {
    if (s <= 0) return std::abs(x) <= width_um / 2 ? 1.0 : 0.0;
    return 0.5 * (std::erf((x + width_um / 2) / s) - std::erf((x - width_um / 2) / s));
  };
  auto pixel = [&](double c) {
    constexpr int n = 32;
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += profile(c - pixel_um / 2 + (i + 0.5) * pixel_um / n);
    return sum / n;
  };
  constexpr int phases = 32;
  double mean_peak = 0;
  for (int p = 0; p < phases; ++p) {
    const double phase = (p + 0.5) / phases * pixel_um;
    double best = 0;
    for (int k = -4; k <= 4; ++k) best = std::max(best, pixel(phase + k * pixel_um - pixel_um / 2));
    mean_peak += best;
  }
  return mean_peak / phases;
}

void write_rgb_png(const std::filesystem::path& path, const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(path.string(), bgr)) throw std::runtime_error("cannot write " + path.string());
}

AltImage generate_alt_field(const AltOptions& o) {
  if (o.width < 64 || o.height < 64 || o.width > 20000 || o.height > 20000)
    throw std::invalid_argument("alt generator: size out of range");
  if (!(o.mpp >= 0.1 && o.mpp <= 2.0)) throw std::invalid_argument("alt generator: mpp out of range");
  double mix_sum = 0;
  for (double m : o.mix) {
    if (!(m >= 0)) throw std::invalid_argument("alt generator: negative mix");
    mix_sum += m;
  }
  if (!(mix_sum > 0)) throw std::invalid_argument("alt generator: empty mix");
  std::array<double, 4> mix{};
  for (int k = 0; k < 4; ++k) mix[k] = o.mix[k] / mix_sum;

  Rng rng(o.seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL);
  AltImage out;
  AltTruth& truth = out.truth;
  truth.stain_h = tilt(normalised(o.stain_h), o.stain_rotation_deg, rng);
  truth.stain_dab = tilt(normalised(o.stain_dab), o.stain_rotation_deg, rng);

  const double mpp = o.mpp;
  const double W = o.width * mpp, H = o.height * mpp;  // field in µm
  const double ex0 = -kMarginUm, ey0 = -kMarginUm;     // extended area origin (µm)
  const double EW = W + 2 * kMarginUm, EH = H + 2 * kMarginUm;

  // ---- Regions: glass edge, lumina, stroma -------------------------------------------------
  // Glass beyond a wavy line parallel to a random side.
  const int glass_side = static_cast<int>(rng() % 4);
  const double side_len = (glass_side % 2 == 0) ? W : H;   // along the edge
  const double depth_len = (glass_side % 2 == 0) ? H : W;  // across
  const double glass_depth = o.glass_fraction * depth_len;
  const double wave_amp = std::min(15.0, glass_depth * 0.6);
  const double wave_f1 = uniform(rng, 1.0, 2.5) * 2 * kPi / side_len, wave_p1 = uniform(rng, 0, 2 * kPi);
  const double wave_f2 = uniform(rng, 4.0, 7.0) * 2 * kPi / side_len, wave_p2 = uniform(rng, 0, 2 * kPi);
  auto is_glass = [&](double x, double y) {
    if (o.glass_fraction <= 0) return false;
    double along = 0, depth = 0;  // depth measured from the glass side inwards
    switch (glass_side) {
      case 0: along = x; depth = y; break;            // top
      case 1: along = y; depth = W - x; break;        // right
      case 2: along = x; depth = H - y; break;        // bottom
      default: along = y; depth = x; break;           // left
    }
    const double edge = glass_depth + wave_amp * (0.7 * std::sin(wave_f1 * along + wave_p1) +
                                                  0.3 * std::sin(wave_f2 * along + wave_p2));
    return depth < edge;
  };

  struct Lumen {
    double x, y, a, b, ang;
  };
  std::vector<Lumen> lumina;
  {
    double area = 0;
    const double target = o.lumen_fraction * W * H;
    for (int tries = 0; area < target && tries < 1000; ++tries) {
      Lumen l{uniform(rng, 0, W), uniform(rng, 0, H), uniform(rng, 12, 32), 0, uniform(rng, 0, kPi)};
      l.b = l.a * uniform(rng, 0.5, 1.0);
      bool ok = !is_glass(l.x, l.y);
      for (const auto& m : lumina)
        if (std::hypot(l.x - m.x, l.y - m.y) < l.a + m.a + 30) ok = false;
      if (!ok) continue;
      lumina.push_back(l);
      area += kPi * l.a * l.b;
    }
  }
  auto is_lumen = [&](double x, double y) {
    for (const auto& l : lumina)
      if (ellipse_contains(x - l.x, y - l.y, l.a, l.b, std::cos(l.ang), std::sin(l.ang))) return true;
    return false;
  };

  SmoothField stroma_field(rng, ex0, ey0, EW, EH, 160.0);
  double stroma_threshold = 1e9;
  if (o.stroma_fraction > 0) {
    std::vector<double> samples;
    for (double y = 0; y < H; y += 4)
      for (double x = 0; x < W; x += 4) samples.push_back(stroma_field(x, y));
    const std::size_t k = static_cast<std::size_t>(
        std::clamp((1.0 - o.stroma_fraction) * static_cast<double>(samples.size()), 0.0,
                   static_cast<double>(samples.size() - 1)));
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k), samples.end());
    stroma_threshold = samples[k];
  }
  auto region_at = [&](double x, double y) -> Region {
    if (is_glass(x, y)) return kGlass;
    if (is_lumen(x, y)) return kLumen;
    if (stroma_field(x, y) > stroma_threshold) return kStroma;
    return kTumour;
  };

  // ---- Tumour cells: random sequential addition on an occupancy grid ------------------------
  Occupancy occ;
  occ.x0 = ex0;
  occ.y0 = ey0;
  occ.nx = static_cast<int>(std::ceil(EW / kGridUm));
  occ.ny = static_cast<int>(std::ceil(EH / kGridUm));
  occ.label.assign(static_cast<std::size_t>(occ.nx) * occ.ny, 0);
  for (int j = 0; j < occ.ny; ++j)
    for (int i = 0; i < occ.nx; ++i)
      if (region_at(ex0 + (i + 0.5) * kGridUm, ey0 + (j + 0.5) * kGridUm) != kTumour) occ.at(i, j) = -1;

  std::vector<CellSpec> cells;
  {
    int failures = 0;
    const int max_failures = 4000;
    while (failures < max_failures) {
      CellSpec c{};
      c.cx_um = uniform(rng, ex0, ex0 + EW);
      c.cy_um = uniform(rng, ey0, ey0 + EH);
      c.a_um = uniform(rng, 4.6, 8.5);
      c.b_um = std::max(4.5, c.a_um * uniform(rng, 0.65, 1.0));
      c.angle_rad = uniform(rng, 0, kPi);
      const int id = static_cast<int>(cells.size()) + 1;
      const auto t = occ.test(c.cx_um, c.cy_um, c.a_um, c.b_um, c.angle_rad, id);
      if (t.area == 0 || t.blocked > 0.02 * t.area || t.overlap > 0.06 * t.area) {
        ++failures;
        continue;
      }
      failures = 0;
      occ.paint(c.cx_um, c.cy_um, c.a_um, c.b_um, c.angle_rad, 0, id);
      cells.push_back(std::move(c));
    }
    // Inflate each cell where there is room, so the sheet is nearly confluent (tumour cells in
    // a nest touch their neighbours; random sequential addition alone jams at about 55 %).
    for (int pass = 0; pass < 8; ++pass)
      for (std::size_t k = 0; k < cells.size(); ++k) {
        auto& c = cells[k];
        const int id = static_cast<int>(k) + 1;
        const double s = 1.04;
        if (c.a_um * s > 9.0) continue;
        const auto t = occ.test(c.cx_um, c.cy_um, c.a_um * s, c.b_um * s, c.angle_rad, id);
        if (t.blocked > 0.02 * t.area || t.overlap > 0.08 * t.area) continue;
        c.a_um *= s;
        c.b_um *= s;
        occ.paint(c.cx_um, c.cy_um, c.a_um, c.b_um, c.angle_rad, 0, id);
      }
  }

  {
    std::int64_t tumour = 0, covered = 0;
    for (int v : occ.label) {
      tumour += v >= 0;
      covered += v > 0;
    }
    truth.tumour_cover_fraction = tumour > 0 ? static_cast<double>(covered) / static_cast<double>(tumour) : 0.0;
  }

  // ---- Classes: spatial clusters (argmax of one smooth field per class, biased to the mix) ----
  {
    const std::size_t n = cells.size();
    std::vector<int> cls(n, 0);
    if (o.cluster_um > 0 && n > 0) {
      std::vector<std::array<double, 4>> f(n);
      for (int k = 0; k < 4; ++k) {
        SmoothField field(rng, ex0, ey0, EW, EH, o.cluster_um);
        for (std::size_t i = 0; i < n; ++i) f[i][k] = field(cells[i].cx_um, cells[i].cy_um);
      }
      std::array<double, 4> w{};
      for (int it = 0; it < 400; ++it) {
        std::array<double, 4> frac{};
        for (std::size_t i = 0; i < n; ++i) {
          int best = -1;
          double bv = -1e300;
          for (int k = 0; k < 4; ++k)
            if (mix[k] > 0 && f[i][k] + w[k] > bv) {
              bv = f[i][k] + w[k];
              best = k;
            }
          cls[i] = best;
          frac[best] += 1.0 / static_cast<double>(n);
        }
        double err = 0;
        for (int k = 0; k < 4; ++k) {
          w[k] += 0.5 * (mix[k] - frac[k]);
          err = std::max(err, std::abs(mix[k] - frac[k]));
        }
        if (err < 0.005) break;
      }
    } else {
      std::discrete_distribution<int> d(mix.begin(), mix.end());
      for (auto& c : cls) c = d(rng);
    }
    for (std::size_t i = 0; i < n; ++i) cells[i].cls = static_cast<scoring::CellClass>(cls[i]);
  }

  // ---- Per-cell appearance -------------------------------------------------------------------
  const int ss = std::max(1, static_cast<int>(std::ceil(mpp / 0.125 - 1e-9)));
  const double sub_um = mpp / ss;
  for (auto& c : cells) {
    const double rn = std::min(uniform(rng, 2.6, 4.2), 0.72 * c.b_um);
    const double stretch = uniform(rng, 1.0, 1.3), nang = uniform(rng, 0, kPi);
    // Eccentric nucleus: offset in the cell's own frame, keeping it inside the cell.
    const double f = uniform(rng, 0.0, 0.6), phi = uniform(rng, 0, 2 * kPi);
    const double ou = f * std::max(0.0, c.a_um - rn * stretch - 0.8) * std::cos(phi);
    const double ov = f * std::max(0.0, c.b_um - rn * stretch - 0.8) * std::sin(phi);
    const double ca = std::cos(c.angle_rad), sa = std::sin(c.angle_rad);
    c.nx_um = c.cx_um + ou * ca - ov * sa;
    c.ny_um = c.cy_um + ou * sa + ov * ca;
    std::array<double, 6> harm{};
    for (int k = 0; k < 3; ++k) {
      harm[2 * k] = uniform(rng, -0.09, 0.09);
      harm[2 * k + 1] = uniform(rng, 0, 2 * kPi);
    }
    const double r_noise = 0.04;
    const int nv = 28;
    for (int v = 0; v < nv; ++v) {
      const double t = 2 * kPi * v / nv;
      double r = rn * (1 + uniform(rng, -r_noise, r_noise));
      for (int k = 0; k < 3; ++k) r *= 1 + harm[2 * k] * std::cos((k + 2) * t + harm[2 * k + 1]);
      double x = r * std::cos(t) * stretch, y = r * std::sin(t) / std::sqrt(stretch);
      const double cn = std::cos(nang), sn = std::sin(nang);
      c.nucleus.emplace_back(c.nx_um + x * cn - y * sn, c.ny_um + x * sn + y * cn);
    }
    c.h_nucleus = uniform(rng, 0.35, 0.65);
    c.h_cyto = uniform(rng, 0.02, 0.05);
    for (int k = 0; k < 3; ++k) {
      c.mod[2 * k] = uniform(rng, 0.0, 0.10);
      c.mod[2 * k + 1] = uniform(rng, 0, 2 * kPi);
    }
    // (Drawn only when asked for, so designs without it keep their random sequence.)
    if (o.cytoplasmic_fraction > 0 && uniform(rng, 0, 1) < o.cytoplasmic_fraction) {
      c.cls = scoring::CellClass::Negative;
      c.cytoplasmic_stain = true;
      c.dab_cyto = uniform(rng, o.cytoplasmic_od[0], o.cytoplasmic_od[1]);
      c.thickness_sub = stroke_thickness_for(1.0 / sub_um);
      c.membrane_peak = c.dab_cyto * o.cytoplasmic_border_gain;
      c.membrane_amp = 1.0;
      c.coverage = 1.0;
      c.arcs = {{0.0, 360.0}};
      continue;
    }
    const int k = static_cast<int>(c.cls);
    if (k == 0) {
      c.blush = o.blush_fraction > 0 && uniform(rng, 0, 1) < o.blush_fraction;
      c.dab_cyto = c.blush ? uniform(rng, o.blush_od[0], o.blush_od[1]) : 0.0;
      continue;
    }
    const auto& band = k == 1 ? o.band_1 : k == 2 ? o.band_2 : o.band_3;
    c.thickness_sub = stroke_thickness_for(o.width_um[k - 1] / sub_um);
    c.membrane_peak = uniform(rng, band[0], band[1]);
    c.membrane_amp = 1.0;  // set when drawn, from the width the line really has
    if (k == 1) {
      c.coverage = uniform(rng, o.partial_coverage[0], o.partial_coverage[1]);
      c.arcs = make_arcs(c.coverage, uniform(rng, 0, 1) < 0.5 ? 1 : 2, rng);
      c.dab_cyto = uniform(rng, o.cyto_od_1[0], o.cyto_od_1[1]);
    } else {
      const double gap = uniform(rng, 0.0, o.complete_gap_max);
      c.coverage = gap < 0.015 ? 1.0 : 1.0 - gap;
      c.arcs = make_arcs(c.coverage, uniform(rng, 0, 1) < 0.5 ? 1 : 2, rng);
      c.dab_cyto = uniform(rng, o.cyto_od_23[0], o.cyto_od_23[1]);
    }
  }

  // ---- Render concentration maps (with a margin so the blur is right at the edges) ----------
  const int mpx = static_cast<int>(std::ceil(3.0 * o.blur_sigma_um / mpp)) + 4;
  const cv::Size msize(o.width + 2 * mpx, o.height + 2 * mpx);
  auto to_px_x = [&](double x_um) { return x_um / mpp + mpx; };  // continuous map coordinate
  auto to_px_y = [&](double y_um) { return y_um / mpp + mpx; };

  cv::Mat h_bg(msize, CV_32F, cv::Scalar(0)), h_nuc(msize, CV_32F, cv::Scalar(0));
  cv::Mat dab(msize, CV_32F, cv::Scalar(0));

  // Background by region: tumour gaps faint; stroma fibrous; lumen and glass empty.
  {
    cv::Mat fib(msize, CV_32F);
    cv::RNG crng(o.seed ^ 0xABCDEFULL);
    crng.fill(fib, cv::RNG::NORMAL, 0.0, 1.0);
    const double sx = 0.6 / mpp, sy = 3.5 / mpp;  // anisotropic: fibres
    cv::GaussianBlur(fib, fib, cv::Size(0, 0), sx, sy);
    cv::Scalar m, s;
    cv::meanStdDev(fib, m, s);
    fib = (fib - m[0]) / std::max(1e-6, s[0]);
    for (int y = 0; y < msize.height; ++y) {
      float* hb = h_bg.ptr<float>(y);
      float* db = dab.ptr<float>(y);
      const float* fb = fib.ptr<float>(y);
      for (int x = 0; x < msize.width; ++x) {
        const double xu = (x + 0.5 - mpx) * mpp, yu = (y + 0.5 - mpx) * mpp;
        const Region r = region_at(xu, yu);
        if (r == kTumour) {
          hb[x] = 0.015f;
          db[x] = 0.01f;
        } else if (r == kStroma) {
          hb[x] = static_cast<float>(std::max(0.0, 0.035 * (1 + 0.45 * fb[x])));
          db[x] = 0.005f;
        }
      }
    }
  }

  // Spindle (fibroblast) nuclei in stroma: random sequential addition with a minimum spacing.
  std::vector<cv::Point2d> spindle_centres;
  if (o.stroma_fraction > 0) {
    SmoothField flow(rng, ex0, ey0, EW, EH, 120.0);
    int failures = 0;
    const double min_d = o.stroma_spacing_um;
    while (failures < 1500) {
      const double x = uniform(rng, ex0, ex0 + EW), y = uniform(rng, ey0, ey0 + EH);
      bool ok = region_at(x, y) == kStroma;
      for (std::size_t i = 0; ok && i < spindle_centres.size(); ++i)
        if (std::hypot(spindle_centres[i].x - x, spindle_centres[i].y - y) < min_d) ok = false;
      if (!ok) {
        ++failures;
        continue;
      }
      failures = 0;
      spindle_centres.emplace_back(x, y);
    }
    for (const auto& p : spindle_centres) {
      const double a = uniform(rng, 4.5, 7.0), b = uniform(rng, 1.1, 1.7);
      const double ang = flow(p.x, p.y) * kPi + uniform(rng, -0.25, 0.25);
      const double hv = uniform(rng, 0.4, 0.6);
      const double cx = to_px_x(p.x), cy = to_px_y(p.y);
      const auto g = patch_for(cx, cy, a / mpp, ss, msize);
      if (g.w <= 0 || g.h <= 0) continue;
      cv::Mat sub(g.h * ss, g.w * ss, CV_8U, cv::Scalar(0));
      cv::ellipse(sub, fixed_point((cx - g.x0) * ss - 0.5, (cy - g.y0) * ss - 0.5),
                  cv::Size(static_cast<int>(std::lround(a / sub_um * (1 << kShift))),
                           static_cast<int>(std::lround(b / sub_um * (1 << kShift)))),
                  ang * 180.0 / kPi, 0, 360, cv::Scalar(255), cv::FILLED, cv::LINE_8, kShift);
      cv::Mat cov = downsample(sub, g);
      cv::Mat roi = h_nuc(cv::Rect(g.x0, g.y0, g.w, g.h));
      cv::max(roi, cov * hv, roi);
      if (p.x >= 0 && p.x < W && p.y >= 0 && p.y < H) ++truth.stroma_nuclei;
      truth.stroma_centres.emplace_back(static_cast<float>(p.x / mpp), static_cast<float>(p.y / mpp));
    }
  }

  // Peak gain by drawn line width (cached at 0.005 µm steps).
  std::map<long, double> gain_cache;
  auto gain_for_width = [&](double w) {
    const long key = std::lround(w / 0.005);
    auto it = gain_cache.find(key);
    if (it == gain_cache.end())
      it = gain_cache.emplace(key, membrane_peak_gain(static_cast<double>(key) * 0.005, kReferenceBlurUm, kReferencePixelUm)).first;
    return it->second;
  };

  // Tumour cells.
  for (const auto& c : cells) {
    const double cx = to_px_x(c.cx_um), cy = to_px_y(c.cy_um);
    const double rad_px = (std::max(c.a_um, c.b_um) + 2.0) / mpp;
    const auto g = patch_for(cx, cy, rad_px, ss, msize);
    if (g.w <= 0 || g.h <= 0) continue;
    const cv::Rect roi_rect(g.x0, g.y0, g.w, g.h);
    const cv::Point centre = fixed_point((cx - g.x0) * ss - 0.5, (cy - g.y0) * ss - 0.5);
    const cv::Size axes(static_cast<int>(std::lround(c.a_um / sub_um * (1 << kShift))),
                        static_cast<int>(std::lround(c.b_um / sub_um * (1 << kShift))));
    const double ang_deg = c.angle_rad * 180.0 / kPi;

    // Cytoplasm (filled ellipse).
    cv::Mat sub(g.h * ss, g.w * ss, CV_8U, cv::Scalar(0));
    cv::ellipse(sub, centre, axes, ang_deg, 0, 360, cv::Scalar(255), cv::FILLED, cv::LINE_8, kShift);
    const cv::Mat fill = downsample(sub, g);
    cv::Mat hb = h_bg(roi_rect);
    cv::max(hb, fill * c.h_cyto, hb);
    cv::Mat cell_dab = fill * c.dab_cyto;

    // Nucleus (irregular polygon).
    sub.setTo(0);
    std::vector<cv::Point> poly;
    for (const auto& p : c.nucleus)
      poly.push_back(fixed_point((to_px_x(p.x) - g.x0) * ss - 0.5, (to_px_y(p.y) - g.y0) * ss - 0.5));
    cv::fillPoly(sub, std::vector<std::vector<cv::Point>>{poly}, cv::Scalar(255), cv::LINE_8, kShift);
    const cv::Mat ncov = downsample(sub, g);
    cv::Mat hn = h_nuc(roi_rect);
    cv::max(hn, ncov * c.h_nucleus, hn);
    if (c.cytoplasmic_stain) {  // a cytoplasmic antigen spares most of the nucleus
      const cv::Mat keep = 1.0 - 0.8 * ncov;
      cell_dab = cell_dab.mul(keep);
    }

    // Membrane: the ellipse outline (or arcs), modulated along its length.
    if (c.membrane_amp > 0) {
      sub.setTo(0);
      for (const auto& arc : c.arcs)
        cv::ellipse(sub, centre, axes, ang_deg, arc.start_deg, arc.end_deg, cv::Scalar(255), c.thickness_sub,
                    cv::LINE_8, kShift);
      // The amplitude that gives the designed peak, for the width of the line as drawn
      // (stroke area / stroke length; OpenCV's thick strokes come out a little wider than asked).
      const double h = std::pow(c.a_um - c.b_um, 2) / std::pow(c.a_um + c.b_um, 2);
      const double perimeter_um = kPi * (c.a_um + c.b_um) * (1 + 3 * h / (10 + std::sqrt(4 - 3 * h)));
      const double area_um2 = cv::countNonZero(sub) * sub_um * sub_um;
      const double width_um = std::max(sub_um, area_um2 / (perimeter_um * c.coverage));
      const double amp = c.membrane_peak / gain_for_width(width_um);
      cv::Mat mcov = downsample(sub, g);
      const double ca = std::cos(c.angle_rad), sa = std::sin(c.angle_rad);
      for (int y = 0; y < g.h; ++y) {
        float* m = mcov.ptr<float>(y);
        for (int x = 0; x < g.w; ++x) {
          if (m[x] <= 0) continue;
          const double dx = g.x0 + x + 0.5 - cx, dy = g.y0 + y + 0.5 - cy;
          const double u = dx * ca + dy * sa, v = -dx * sa + dy * ca;
          const double t = std::atan2(v / c.b_um, u / c.a_um);
          double mod = 1;
          for (int k = 0; k < 3; ++k) mod += c.mod[2 * k] * std::cos((k + 1) * t + c.mod[2 * k + 1]);
          m[x] = static_cast<float>(m[x] * amp * mod);
        }
      }
      cv::max(cell_dab, mcov, cell_dab);
    }
    cv::Mat d = dab(roi_rect);
    cv::max(d, cell_dab, d);
  }

  // Pigment granules (own random sequence, so designs without pigment are unchanged).
  cv::Mat pigment(msize, CV_32F, cv::Scalar(0));
  if (o.pigment_fraction > 0) {
    Rng prng(o.seed ^ 0x9161E47ULL);
    auto granule = [&](double x_um, double y_um) {
      const double r = uniform(prng, o.pigment_radius_um[0], o.pigment_radius_um[1]) / mpp;
      const double od = uniform(prng, o.pigment_od[0], o.pigment_od[1]);
      const double gx = to_px_x(x_um), gy = to_px_y(y_um);
      const int x0 = std::max(0, static_cast<int>(std::floor(gx - r - 1))), x1 = std::min(msize.width - 1, static_cast<int>(std::ceil(gx + r + 1)));
      const int y0 = std::max(0, static_cast<int>(std::floor(gy - r - 1))), y1 = std::min(msize.height - 1, static_cast<int>(std::ceil(gy + r + 1)));
      for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x) {
          const double d = std::hypot(x + 0.5 - gx, y + 0.5 - gy);
          const double cover = std::clamp(r - d + 0.5, 0.0, 1.0);  // about the pixel's share of the disc
          float& v = pigment.at<float>(y, x);
          v = std::max(v, static_cast<float>(od * cover));
        }
    };
    for (const auto& c : cells) {
      if (uniform(prng, 0, 1) >= o.pigment_fraction) continue;
      const double ca = std::cos(c.angle_rad), sa = std::sin(c.angle_rad);
      if (o.pigment_on_outline) {
        // Walk the outline by arc length; granules at spacing x [0.6, 1.4].
        const double step_t = 0.01;
        double next = uniform(prng, 0.0, o.pigment_spacing_um), run = 0;
        double px = c.a_um, py = 0;
        for (double t = step_t; t <= 2 * kPi + 1e-9; t += step_t) {
          const double ux = c.a_um * std::cos(t), uy = c.b_um * std::sin(t);
          run += std::hypot(ux - px, uy - py);
          px = ux;
          py = uy;
          if (run < next) continue;
          run = 0;
          next = o.pigment_spacing_um * uniform(prng, 0.6, 1.4);
          granule(c.cx_um + ux * ca - uy * sa, c.cy_um + ux * sa + uy * ca);
        }
      } else {
        const double area = kPi * c.a_um * c.b_um;
        const int n = static_cast<int>(std::lround(area / (o.pigment_spacing_um * o.pigment_spacing_um * 4)));
        for (int k = 0; k < n; ++k) {
          const double rr = std::sqrt(uniform(prng, 0.15, 0.8)), t = uniform(prng, 0, 2 * kPi);
          const double ux = c.a_um * rr * std::cos(t), uy = c.b_um * rr * std::sin(t);
          granule(c.cx_um + ux * ca - uy * sa, c.cy_um + ux * sa + uy * ca);
        }
      }
    }
  }

  // Chromatin texture on nuclei, then the optical blur.
  {
    cv::Mat tex(msize, CV_32F);
    cv::RNG crng(o.seed ^ 0x5151ULL);
    crng.fill(tex, cv::RNG::NORMAL, 0.0, 1.0);
    cv::GaussianBlur(tex, tex, cv::Size(0, 0), std::max(0.3, 0.5 / mpp));
    cv::Scalar m, s;
    cv::meanStdDev(tex, m, s);
    tex = (tex - m[0]) * (0.2 / std::max(1e-6, s[0])) + 1.0;
    cv::max(tex, 0.4, tex);
    h_nuc = h_nuc.mul(tex);
  }
  cv::Mat hmap = h_bg + h_nuc;
  if (o.blur_sigma_um > 0) {
    const double s = o.blur_sigma_um / mpp;
    cv::GaussianBlur(hmap, hmap, cv::Size(0, 0), s);
    cv::GaussianBlur(dab, dab, cv::Size(0, 0), s);
    if (o.pigment_fraction > 0) cv::GaussianBlur(pigment, pigment, cv::Size(0, 0), s);
  }
  const cv::Mat pigment_field = pigment(cv::Rect(mpx, mpx, o.width, o.height));
  std::array<double, 3> pig_vec{};
  {
    const double n = std::hypot(o.pigment_vector[0], o.pigment_vector[1], o.pigment_vector[2]);
    for (int c = 0; c < 3; ++c) pig_vec[static_cast<std::size_t>(c)] = o.pigment_vector[static_cast<std::size_t>(c)] / std::max(1e-9, n);
  }
  // Artefacts (own random sequence: designs without them keep theirs). Masks in map pixels.
  cv::Mat fold_map, blur_map;
  double fold_cx = 0, fold_cy = 0, fold_nx = 0, fold_ny = 0;  // band centre (µm) and unit normal
  double blur_cx = 0, blur_cy = 0, blur_a = 0, blur_b = 0, blur_ang = 0;
  {
    Rng arng(o.seed * 0xD1B54A32D192ED03ULL + 0xF01DULL);
    if (o.fold_width_um > 0) {
      const double theta = uniform(arng, 0, kPi);
      fold_nx = std::cos(theta);
      fold_ny = std::sin(theta);
      fold_cx = W * uniform(arng, 0.4, 0.6);
      fold_cy = H * uniform(arng, 0.4, 0.6);
      fold_map = cv::Mat(msize, CV_8U, cv::Scalar(0));
      for (int y = 0; y < msize.height; ++y) {
        std::uint8_t* f = fold_map.ptr<std::uint8_t>(y);
        for (int x = 0; x < msize.width; ++x) {
          const double xu = (x + 0.5 - mpx) * mpp, yu = (y + 0.5 - mpx) * mpp;
          if (std::abs((xu - fold_cx) * fold_nx + (yu - fold_cy) * fold_ny) <= o.fold_width_um / 2) f[x] = 255;
        }
      }
      // The second layer: the field shifted across the band (the tissue beside it, folded over).
      const double sx = fold_nx * o.fold_shift_um / mpp, sy = fold_ny * o.fold_shift_um / mpp;
      const cv::Mat shift = (cv::Mat_<double>(2, 3) << 1, 0, sx, 0, 1, sy);
      for (cv::Mat* m : {&hmap, &dab}) {
        cv::Mat layer;
        cv::warpAffine(*m, layer, shift, m->size(), cv::INTER_LINEAR, cv::BORDER_REFLECT_101);
        cv::Mat sum = *m + layer * o.fold_gain;
        sum.copyTo(*m, fold_map);
      }
    }
    const auto& fr = o.focus_rect_um;
    if (o.focus_radius_um > 0 || fr[2] > 0) {
      blur_map = cv::Mat(msize, CV_8U, cv::Scalar(0));
      if (o.focus_radius_um > 0) {
        blur_a = o.focus_radius_um;
        blur_b = 0.7 * o.focus_radius_um;
        blur_ang = uniform(arng, 0, kPi);
        blur_cx = uniform(arng, std::min(W / 2, blur_a), std::max(W / 2, W - blur_a));
        blur_cy = uniform(arng, std::min(H / 2, blur_a), std::max(H / 2, H - blur_a));
        cv::ellipse(blur_map, cv::Point2d(blur_cx / mpp + mpx - 0.5, blur_cy / mpp + mpx - 0.5),
                    cv::Size2d(blur_a / mpp, blur_b / mpp), blur_ang * 180.0 / kPi, 0, 360, cv::Scalar(255), cv::FILLED);
      }
      if (fr[2] > 0) {
        const cv::Rect r(static_cast<int>(std::lround(fr[0] / mpp)) + mpx, static_cast<int>(std::lround(fr[1] / mpp)) + mpx,
                         static_cast<int>(std::lround(fr[2] / mpp)), static_cast<int>(std::lround(fr[3] / mpp)));
        blur_map(r & cv::Rect(0, 0, msize.width, msize.height)).setTo(255);
      }
      const double s = o.focus_blur_um / mpp;
      for (cv::Mat* m : {&hmap, &dab}) {
        cv::Mat blurred;
        cv::GaussianBlur(*m, blurred, cv::Size(0, 0), s);
        blurred.copyTo(*m, blur_map);
      }
    }
  }
  auto in_fold = [&](double x_um, double y_um) {
    return o.fold_width_um > 0 && std::abs((x_um - fold_cx) * fold_nx + (y_um - fold_cy) * fold_ny) <= o.fold_width_um / 2;
  };
  auto in_blur = [&](double x_um, double y_um) {
    const auto& fr = o.focus_rect_um;
    if (fr[2] > 0 && x_um >= fr[0] && x_um < fr[0] + fr[2] && y_um >= fr[1] && y_um < fr[1] + fr[3]) return true;
    return o.focus_radius_um > 0 &&
           ellipse_contains(x_um - blur_cx, y_um - blur_cy, blur_a, blur_b, std::cos(blur_ang), std::sin(blur_ang));
  };

  const cv::Rect crop(mpx, mpx, o.width, o.height);
  if (!fold_map.empty()) truth.fold_mask = fold_map(crop).clone();
  if (!blur_map.empty()) truth.blur_mask = blur_map(crop).clone();
  out.hematoxylin = hmap(crop).clone();
  out.dab = dab(crop).clone();

  // ---- Beer-Lambert, noise, JPEG -------------------------------------------------------------
  {
    cv::Mat img(o.height, o.width, CV_32FC3);
    for (int y = 0; y < o.height; ++y) {
      const float* hp = out.hematoxylin.ptr<float>(y);
      const float* dp = out.dab.ptr<float>(y);
      const float* pp = pigment_field.ptr<float>(y);
      cv::Vec3f* ip = img.ptr<cv::Vec3f>(y);
      for (int x = 0; x < o.width; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          const double od = hp[x] * truth.stain_h[ch] + dp[x] * truth.stain_dab[ch] + pp[x] * pig_vec[static_cast<std::size_t>(ch)];
          ip[x][ch] = static_cast<float>(o.background[ch] * std::pow(10.0, -od));
        }
    }
    if (o.noise_sigma > 0) {
      cv::Mat noise(img.size(), CV_32FC3);
      cv::RNG crng(o.seed ^ 0x77ULL);
      crng.fill(noise, cv::RNG::NORMAL, 0.0, o.noise_sigma);
      img += noise;
    }
    img.convertTo(out.rgb, CV_8UC3);  // rounds and saturates
    if (o.jpeg_quality > 0) {
      cv::Mat bgr;
      cv::cvtColor(out.rgb, bgr, cv::COLOR_RGB2BGR);
      std::vector<std::uint8_t> buf;
      if (!cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, std::clamp(o.jpeg_quality, 1, 100)}))
        throw std::runtime_error("alt generator: JPEG encode failed");
      bgr = cv::imdecode(buf, cv::IMREAD_COLOR);
      cv::cvtColor(bgr, out.rgb, cv::COLOR_BGR2RGB);
    }
  }

  // ---- Truth ---------------------------------------------------------------------------------
  for (const auto& c : cells) {
    AltCell a;
    a.centre = cv::Point2f(static_cast<float>(c.cx_um / mpp), static_cast<float>(c.cy_um / mpp));
    a.nucleus = cv::Point2f(static_cast<float>(c.nx_um / mpp), static_cast<float>(c.ny_um / mpp));
    a.a_um = static_cast<float>(c.a_um);
    a.b_um = static_cast<float>(c.b_um);
    a.angle_deg = static_cast<float>(c.angle_rad * 180.0 / kPi);
    a.membrane_peak_od = static_cast<float>(c.membrane_peak);
    a.coverage = static_cast<float>(c.coverage);
    a.blush = c.blush;
    a.cytoplasmic_stain = c.cytoplasmic_stain;
    a.cell_class = c.cls;
    a.in_image = c.nx_um >= 0 && c.nx_um < W && c.ny_um >= 0 && c.ny_um < H;
    a.in_fold = in_fold(c.nx_um, c.ny_um);
    a.in_blur = !a.in_fold && in_blur(c.nx_um, c.ny_um);
    if (a.in_image && a.in_fold) ++truth.cells_in_fold;
    else if (a.in_image && a.in_blur) ++truth.cells_in_blur;
    else if (a.in_image) ++truth.counts.by_class[static_cast<int>(c.cls)];
    truth.cells.push_back(a);
  }
  truth.percent = truth.counts.percent();
  truth.score_2018 = scoring::score_from_percent(truth.percent, truth.counts.total(), scoring::Guideline::AscoCap2018);
  truth.score_2007 = scoring::score_from_percent(truth.percent, truth.counts.total(), scoring::Guideline::AscoCap2007);
  return out;
}

}  // namespace ihc::test
