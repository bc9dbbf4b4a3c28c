// The Python module `ihcscore`: the engine on numpy arrays, for notebooks and validation
// studies. A thin layer like the command line: settings are checked by the engine
// (make_score_options), reports are the engine's JSON, errors keep the command line's one-line
// messages as Python exceptions. Scoring and reading release the GIL; Ctrl-C in the calling
// (main) thread stops a score between tiles.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/pipeline.hpp"
#include "ihc/engine/report.hpp"
#include "ihc/engine/settings.hpp"
#include "ihc/engine/text.hpp"
#include "ihc/scoring/cells.hpp"
#include "ihc/scoring/stains.hpp"
#include "ihc/tiling/slide.hpp"

namespace py = pybind11;
namespace engine = ihc::engine;
namespace scoring = ihc::scoring;
namespace tiling = ihc::tiling;

namespace {

PyObject* g_slide_error = nullptr;  // ihcscore.SlideError
struct Cancelled {};                // Ctrl-C seen between tiles: the KeyboardInterrupt is pending

// A cv::Mat as a numpy array sharing its pixels (the array keeps the Mat alive).
template <typename T>
py::array mat_to_numpy(cv::Mat m, int channels) {
  auto* owner = new cv::Mat(std::move(m));
  py::capsule keep(owner, [](void* p) { delete static_cast<cv::Mat*>(p); });
  std::vector<py::ssize_t> shape{owner->rows, owner->cols}, strides{static_cast<py::ssize_t>(owner->step[0]),
                                                                    static_cast<py::ssize_t>(sizeof(T) * channels)};
  if (channels > 1) {
    shape.push_back(channels);
    strides.push_back(sizeof(T));
  }
  return py::array_t<T>(shape, strides, reinterpret_cast<T*>(owner->data), keep);
}

py::object json_to_python(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(engine::json_text(j));
}

void warn(const std::string& text) {
  py::module_::import("warnings").attr("warn")(text, py::module_::import("builtins").attr("RuntimeWarning"), 2);
}

engine::ScoringSettings settings_from(std::optional<double> mpp, const std::string& guideline,
                                      std::optional<int> threads, std::optional<std::string> roi,
                                      std::optional<std::string> config, const std::string& specimen,
                                      double analysis_mpp, const std::string& stains, const std::string& decode) {
  engine::ScoringSettings s;
  s.mpp = mpp;
  s.guideline = guideline;
  if (threads && *threads < 1) throw engine::EngineError(engine::ErrorKind::usage, "threads: must be 1 or more");
  s.threads = threads.value_or(0);
  if (roi && roi->empty()) throw engine::EngineError(engine::ErrorKind::usage, "roi: an empty value");
  if (config && config->empty()) throw engine::EngineError(engine::ErrorKind::usage, "config: an empty value");
  s.roi = roi.value_or("");
  s.config = config.value_or("");
  s.specimen = specimen;
  s.analysis_mpp = analysis_mpp;
  s.stains = stains;
  s.decode = decode;
  return s;
}

struct Scored {
  engine::SlideResult result;
  engine::ScoreOptions options;
};

// Opens and scores as `ihcscore score` does, without the GIL. Errors are the command line's.
Scored score_path(const std::string& path, const engine::ScoringSettings& s, bool keep_cells, bool keep_left_out,
                  bool outlines, const std::optional<std::vector<double>>& region) {
  Scored out;
  out.options = engine::make_score_options(s);
  if (region) {
    // A rectangle (x, y, w, h) in level-0 pixels: an ROI without a GeoJSON file.
    if (!s.roi.empty()) throw engine::EngineError(engine::ErrorKind::usage, "region and roi: give one or the other");
    if (region->size() != 4 || !((*region)[2] > 0) || !((*region)[3] > 0))
      throw engine::EngineError(engine::ErrorKind::usage, "region: expected (x, y, w, h) with w and h above 0");
    const double x = (*region)[0], y = (*region)[1], w = (*region)[2], h = (*region)[3];
    scoring::Polygon rect;
    rect.rings.push_back({{x, y}, {x + w, y}, {x + w, y + h}, {x, y + h}});
    out.options.roi = scoring::Region({rect});
    char name[160];
    std::snprintf(name, sizeof name, "region %g,%g,%g,%g", x, y, w, h);
    out.options.roi_source = name;
  }
  out.options.keep_cells = keep_cells || keep_left_out;
  out.options.keep_left_out = keep_left_out;
  out.options.cells.keep_outlines = outlines;
  std::vector<std::string> warnings;
  bool cancelled = false;
  {
    py::gil_scoped_release release;
    const std::thread::id caller = std::this_thread::get_id();
    const auto slide = engine::open_for_scoring(path, s);
    try {
      for (const auto& w : slide->warnings()) warnings.push_back(path + ": " + w);
      if (std::string w = engine::apply_stain_choice(*slide, s, out.options); !w.empty()) warnings.push_back(w);
      out.result = engine::score_slide(*slide, out.options, [&](std::int64_t, std::int64_t) {
        // Python runs signal handlers in the main thread only: the caller checks, between its tiles.
        if (std::this_thread::get_id() != caller) return;
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) throw Cancelled{};
      });
    } catch (const Cancelled&) {
      cancelled = true;
    } catch (const tiling::SlideError& e) {
      throw engine::EngineError(engine::ErrorKind::input, path + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      throw engine::EngineError(engine::ErrorKind::usage, path + ": " + e.what());
    } catch (const std::bad_alloc&) {
      throw engine::EngineError(engine::ErrorKind::input, path + ": too large to score here: memory ran out");
    }
  }
  if (cancelled) throw py::error_already_set();  // the KeyboardInterrupt
  for (const auto& w : warnings) warn(w);
  return out;
}

// One numpy column: get(cell) for each cell.
template <typename T, typename Get>
py::array_t<T> column(const std::vector<const engine::SlideCell*>& cells, Get get) {
  py::array_t<T> out(static_cast<py::ssize_t>(cells.size()));
  auto o = out.template mutable_unchecked<1>();
  for (std::size_t i = 0; i < cells.size(); ++i) o(static_cast<py::ssize_t>(i)) = static_cast<T>(get(*cells[i]));
  return out;
}

// The cells of a result as a dict of equally long numpy arrays (no Python loop per cell).
py::dict cells_to_numpy(const engine::SlideResult& r, bool with_left_out, bool outlines) {
  std::vector<const engine::SlideCell*> cells;
  for (const auto& t : r.tiles) {
    for (const auto& c : t.cells) cells.push_back(&c);
    if (with_left_out)
      for (const auto& c : t.left_out_cells) cells.push_back(&c);
  }
  using Cell = engine::SlideCell;
  py::dict d;
  d["x"] = column<float>(cells, [](const Cell& c) { return c.x; });
  d["y"] = column<float>(cells, [](const Cell& c) { return c.y; });
  d["class"] = column<std::int8_t>(cells, [](const Cell& c) { return static_cast<int>(c.cell_class); });
  d["completeness"] = column<float>(cells, [](const Cell& c) { return c.completeness; });
  d["intensity_od"] = column<float>(cells, [](const Cell& c) { return c.intensity_od; });
  d["nucleus_area_um2"] = column<float>(cells, [](const Cell& c) { return c.nucleus_area_um2; });
  d["counted"] = column<bool>(cells, [](const Cell& c) { return c.counted; });
  d["left_out"] = column<std::uint8_t>(cells, [](const Cell& c) { return c.left_out; });
  d["cytoplasmic"] = column<bool>(cells, [](const Cell& c) { return c.cytoplasmic; });
  d["pigment"] = column<bool>(cells, [](const Cell& c) { return c.pigment; });
  d["lateral"] = column<bool>(cells, [](const Cell& c) { return c.lateral; });
  d["excluded_fold"] = column<bool>(cells, [](const Cell& c) { return (c.excluded & scoring::kExcludedFold) != 0; });
  d["excluded_focus"] = column<bool>(cells, [](const Cell& c) { return (c.excluded & scoring::kExcludedFocus) != 0; });
  if (outlines) {
    py::list outline_list;
    for (const Cell* c : cells) {
      py::array_t<float> o({static_cast<py::ssize_t>(c->outline.size()), py::ssize_t{2}});
      auto O = o.mutable_unchecked<2>();
      for (std::size_t k = 0; k < c->outline.size(); ++k) {
        O(static_cast<py::ssize_t>(k), 0) = c->outline[k].x;
        O(static_cast<py::ssize_t>(k), 1) = c->outline[k].y;
      }
      outline_list.append(std::move(o));
    }
    d["outline"] = outline_list;
  }
  return d;
}

// A slide held open for reading regions (OpenSlide opens cost milliseconds each).
class PySlide {
 public:
  explicit PySlide(const std::string& path) : path_(path) {
    py::gil_scoped_release release;
    try {
      slide_ = tiling::open_slide(path);
    } catch (const tiling::SlideError& e) {
      rethrow_named(e);
    }
  }
  py::array read_region(std::int64_t x, std::int64_t y, int w, int h, int level) const {
    if (w <= 0 || h <= 0) throw engine::EngineError(engine::ErrorKind::usage, "read_region: width and height must be positive");
    if (level < 0 || level >= static_cast<int>(slide_->levels().size()))
      throw engine::EngineError(engine::ErrorKind::usage, "read_region: level " + std::to_string(level) + " is not in 0-" +
                                                              std::to_string(slide_->levels().size() - 1));
    cv::Mat rgb;
    {
      py::gil_scoped_release release;
      try {
        rgb = slide_->read_region(level, x, y, w, h);
      } catch (const tiling::SlideError& e) {
        rethrow_named(e);
      }
    }
    return mat_to_numpy<std::uint8_t>(std::move(rgb), 3);
  }
  py::list levels() const {
    py::list out;
    for (const auto& l : slide_->levels()) out.append(py::make_tuple(l.width, l.height, l.downsample));
    return out;
  }
  std::optional<double> mpp() const { return slide_->mpp(); }
  std::string reader() const { return slide_->reader(); }
  std::string vendor() const { return slide_->vendor(); }
  std::map<std::string, std::string> properties() const { return slide_->properties(); }

 private:
  [[noreturn]] void rethrow_named(const tiling::SlideError& e) const { throw tiling::SlideError(e.kind(), path_ + ": " + e.what()); }
  std::string path_;
  std::unique_ptr<tiling::Slide> slide_;
};

std::optional<scoring::Rgb3> rgb3(const std::optional<std::vector<double>>& v, const char* what) {
  if (!v) return std::nullopt;
  if (v->size() != 3)
    throw engine::EngineError(engine::ErrorKind::usage, std::string(what) + ": expected three numbers r, g, b");
  return scoring::Rgb3{(*v)[0], (*v)[1], (*v)[2]};
}

}  // namespace

PYBIND11_MODULE(ihcscore, m) {
  m.doc() = "HER2 IHC scoring of whole-slide images and fields: the ihcscore engine from Python.";
  m.attr("__version__") = engine::version_string();
  g_slide_error = PyErr_NewExceptionWithDoc("ihcscore.SlideError",
                                            "A slide or image that cannot be read: damaged, truncated, unsupported.",
                                            PyExc_RuntimeError, nullptr);
  m.attr("SlideError") = py::handle(g_slide_error);
  py::dict left_out_names;
  for (int b = 0; b < scoring::kLeftOutRules; ++b)
    left_out_names[py::int_(1 << b)] = scoring::left_out_reasons(static_cast<std::uint8_t>(1u << b));
  m.attr("LEFT_OUT") = left_out_names;

  // The command line's error model, as Python exceptions with the same one-line message.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const engine::EngineError& e) {
      const std::string text = engine::one_line(e.what());
      switch (e.kind()) {
        case engine::ErrorKind::usage: PyErr_SetString(PyExc_ValueError, text.c_str()); return;
        case engine::ErrorKind::output: PyErr_SetString(PyExc_OSError, text.c_str()); return;
        case engine::ErrorKind::input:
          PyErr_SetString(text.find(": no such file") != std::string::npos ||
                                  text.find(": no such region-of-interest file") != std::string::npos ||
                                  text.find(": is a directory") != std::string::npos
                              ? PyExc_FileNotFoundError
                              : g_slide_error,
                          text.c_str());
          return;
        default: PyErr_SetString(PyExc_RuntimeError, text.c_str()); return;
      }
    } catch (const tiling::SlideError& e) {
      const std::string text = engine::one_line(e.what());
      PyErr_SetString(e.kind() == tiling::SlideError::Kind::NotFound ? PyExc_FileNotFoundError : g_slide_error,
                      text.c_str());
    }
  });

  m.def(
      "score",
      [](const std::string& path, std::optional<double> mpp, const std::string& guideline, std::optional<int> threads,
         std::optional<std::string> roi, std::optional<std::string> config, const std::string& specimen,
         double analysis_mpp, const std::string& stains, const std::string& decode, bool cells, bool left_out,
         bool outlines, std::optional<std::vector<double>> region) -> py::object {
        const auto s = settings_from(mpp, guideline, threads, roi, config, specimen, analysis_mpp, stains, decode);
        const Scored scored = score_path(path, s, cells, cells && left_out, cells && outlines, region);
        py::object report = json_to_python(engine::report_json(scored.result, scored.options));
        if (!cells) return report;
        return py::make_tuple(report, cells_to_numpy(scored.result, left_out, outlines));
      },
      py::arg("path"), py::kw_only(), py::arg("mpp") = py::none(), py::arg("guideline") = "asco-cap-2018",
      py::arg("threads") = py::none(), py::arg("roi") = py::none(), py::arg("config") = py::none(),
      py::arg("specimen") = "resection", py::arg("analysis_mpp") = 0.5, py::arg("stains") = "default",
      py::arg("decode") = "fast", py::arg("cells") = false, py::arg("left_out") = false, py::arg("outlines") = false,
      py::arg("region") = py::none(),
      R"(Scores a slide or image; returns the report `ihcscore score --json` writes, as a dict.

With cells=True returns (report, cells): cells is a dict of equally long numpy arrays, one entry
per counted tumour cell (with left_out=True also every detected cell the tumour-cell rules left
out, `counted` False and `left_out` a bitmask, see LEFT_OUT): x, y (level-0 pixels), class (0-3),
completeness, intensity_od, nucleus_area_um2, counted, left_out, cytoplasmic, pigment, lateral,
excluded_fold, excluded_focus, and with outlines=True `outline`, a list of (n, 2) arrays.
region=(x, y, w, h) scores only the cells inside that level-0 rectangle (as roi= does with a QuPath
GeoJSON or Aperio ImageScope XML file). Options are the command line's (--mpp, --guideline, ...). Releases the GIL
while it works.)");

  py::class_<PySlide>(m, "Slide", "A slide or image held open for reading regions (direct reader, else OpenSlide, else a plain PNG, JPEG or TIFF image).")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def("read_region", &PySlide::read_region, py::arg("x"), py::arg("y"), py::arg("w"), py::arg("h"),
           py::arg("level") = 0,
           "RGB uint8 array (h, w, 3) of `level`; (x, y) top-left in level-0 pixels; white outside the image.")
      .def_property_readonly("levels", &PySlide::levels, "[(width, height, downsample), ...]")
      .def_property_readonly("mpp", &PySlide::mpp, "Micrometres per level-0 pixel, or None")
      .def_property_readonly("reader", &PySlide::reader)
      .def_property_readonly("vendor", &PySlide::vendor)
      .def_property_readonly("properties", &PySlide::properties);

  m.def(
      "read_region",
      [](const std::string& path, std::int64_t x, std::int64_t y, int w, int h, int level) {
        return PySlide(path).read_region(x, y, w, h, level);
      },
      py::arg("path"), py::arg("x"), py::arg("y"), py::arg("w"), py::arg("h"), py::arg("level") = 0,
      "One region of a slide (opens it each time: use Slide for many regions).");

  m.def(
      "deconvolve",
      [](py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast> rgb,
         std::optional<std::vector<double>> hematoxylin, std::optional<std::vector<double>> dab, double i0) {
        if (rgb.ndim() != 3 || rgb.shape(2) != 3)
          throw engine::EngineError(engine::ErrorKind::usage, "deconvolve: expected an (h, w, 3) RGB array");
        const auto defaults = scoring::StainVectors::defaults();
        const auto stains = scoring::StainVectors::make(rgb3(hematoxylin, "hematoxylin").value_or(defaults.hematoxylin),
                                                        rgb3(dab, "dab").value_or(defaults.dab), i0);
        if (!stains)
          throw engine::EngineError(engine::ErrorKind::usage,
                                    "deconvolve: stain vectors must be non-negative, non-zero and not parallel, i0 in 2-255");
        // The caller's pixels, not a copy (the array is C-contiguous uint8).
        const cv::Mat in(static_cast<int>(rgb.shape(0)), static_cast<int>(rgb.shape(1)), CV_8UC3,
                         const_cast<std::uint8_t*>(rgb.data()));
        scoring::Deconvolved d;
        {
          py::gil_scoped_release release;
          d = scoring::deconvolve(in, *stains);
        }
        return py::make_tuple(mat_to_numpy<float>(d.hematoxylin, 1), mat_to_numpy<float>(d.dab, 1));
      },
      py::arg("rgb"), py::kw_only(), py::arg("hematoxylin") = py::none(), py::arg("dab") = py::none(),
      py::arg("i0") = 255.0,
      "Colour deconvolution (Ruifrok & Johnston) of an RGB uint8 array: (hematoxylin, dab) float32 "
      "concentrations in optical density units of each unit stain vector.");
}
