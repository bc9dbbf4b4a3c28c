// `ihcscore deconvolve IMAGE|SLIDE --out PREFIX`: haematoxylin and DAB concentration images of a
// region, as single-channel 32-bit float TIFFs (PREFIX_hematoxylin.tif, PREFIX_dab.tif), written
// together: both or neither.
#include <fcntl.h>
#include <tiffio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "ihc/cli/options.hpp"
#include "ihc/cli/commands.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/signals.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/stain_choice.hpp"
#include "ihc/scoring/chroma.hpp"
#include "ihc/scoring/stains.hpp"
#include "ihc/tiling/slide.hpp"
#include "ihc/tiling/tiff_open.hpp"

namespace ihc::cli {
namespace {
namespace fs = std::filesystem;

constexpr std::int64_t kMaxOutputPixels = 64'000'000;


// Writes `image` (CV_32FC1) as a single-channel IEEE float TIFF, deflate, strips of ~256 KiB.
// `mpp`: micrometres per pixel of the image (resolution tags), when known.
void write_float_tiff(const fs::path& tmp, const fs::path& target, const cv::Mat& image, std::optional<double> mpp,
                      const std::string& description) {
  CV_Assert(image.type() == CV_32FC1);
  tiling::TiffMessages messages;
  const auto fail = [&](const std::string& what) {
    const std::string why = messages.errors.empty() ? what : what + ": " + messages.last();
    return EngineError(ErrorKind::output, target.string() + ": cannot be written: " + why);
  };
  TIFF* tif = tiling::open_tiff_quietly(tmp, "w", messages);
  if (!tif) throw fail(std::strerror(errno ? errno : EIO));
  std::unique_ptr<TIFF, void (*)(TIFF*)> guard(tif, TIFFClose);
  const auto width = static_cast<std::uint32_t>(image.cols), height = static_cast<std::uint32_t>(image.rows);
  const std::uint32_t rows_per_strip = std::max<std::uint32_t>(1, (256u * 1024u) / (4u * std::max<std::uint32_t>(width, 1)));
  bool ok = TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width) && TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height) &&
            TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, static_cast<std::uint16_t>(1)) &&
            TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<std::uint16_t>(32)) &&
            TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, static_cast<std::uint16_t>(SAMPLEFORMAT_IEEEFP)) &&
            TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, static_cast<std::uint16_t>(PHOTOMETRIC_MINISBLACK)) &&
            TIFFSetField(tif, TIFFTAG_PLANARCONFIG, static_cast<std::uint16_t>(PLANARCONFIG_CONTIG)) &&
            TIFFSetField(tif, TIFFTAG_COMPRESSION, static_cast<std::uint16_t>(COMPRESSION_ADOBE_DEFLATE)) &&
            TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rows_per_strip) &&
            TIFFSetField(tif, TIFFTAG_SOFTWARE, "ihcscore " IHC_VERSION) &&
            TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
  if (ok && mpp && *mpp > 0) {
    const float per_cm = static_cast<float>(1e4 / *mpp);
    ok = TIFFSetField(tif, TIFFTAG_XRESOLUTION, per_cm) && TIFFSetField(tif, TIFFTAG_YRESOLUTION, per_cm) &&
         TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, static_cast<std::uint16_t>(RESUNIT_CENTIMETER));
  }
  if (!ok) throw fail("cannot set TIFF tags");
  for (int y = 0; y < image.rows; ++y) {
    // libtiff takes a non-const buffer but does not modify it when not byte-swapping.
    auto* row = const_cast<float*>(image.ptr<float>(y));
    if (TIFFWriteScanline(tif, row, static_cast<std::uint32_t>(y), 0) < 0) throw fail("write failed");
  }
  if (!TIFFFlush(tif)) throw fail("write failed");
  guard.reset();
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced) throw fail(std::strerror(errno ? errno : EIO));
}

std::optional<std::int64_t> parse_int(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size()) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

// "x,y,w,h" in level-0 pixels, inside the slide; EngineError(usage) otherwise.
tiling::Rect parse_region(const std::string& text, std::int64_t width, std::int64_t height) {
  tiling::Rect r;
  std::int64_t* fields[4] = {&r.x, &r.y, &r.w, &r.h};
  std::size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    const std::size_t end = i < 3 ? text.find(',', pos) : text.size();
    const auto v = end == std::string::npos ? std::nullopt : parse_int(text.substr(pos, end - pos));
    if (!v)
      throw EngineError(ErrorKind::usage, "--region: expected four integers x,y,w,h (level-0 pixels), got '" + text + "'");
    *fields[i] = *v;
    pos = end + 1;
  }
  const std::string dims = std::to_string(width) + " x " + std::to_string(height);
  if (r.x < 0 || r.y < 0)
    throw EngineError(ErrorKind::usage, "--region " + text + ": x and y must not be negative");
  if (r.w <= 0 || r.h <= 0) throw EngineError(ErrorKind::usage, "--region " + text + ": width and height must be positive");
  if (r.x >= width || r.y >= height || r.w > width - r.x || r.h > height - r.y)
    throw EngineError(ErrorKind::usage, "--region " + text + ": outside the slide (" + dims + " level-0 pixels)");
  return r;
}

struct DeconvolveArgs {
  std::string input;
  std::string region;
  int level = 0;
  std::optional<double> mpp;
  std::string stains = "default";
  std::optional<double> i0;
  std::string out;
  bool force = false;
};

int run_deconvolve(const DeconvolveArgs& args) {
  const fs::path h_path = args.out + "_hematoxylin.tif";
  const fs::path d_path = args.out + "_dab.tif";

  std::unique_ptr<tiling::Slide> slide;
  try {
    slide = tiling::open_slide(args.input);
  } catch (const tiling::SlideError& e) {
    throw EngineError(ErrorKind::input, args.input + ": " + e.what());
  }
  if (args.mpp) slide->set_mpp(*args.mpp);
  const auto& levels = slide->levels();
  if (args.level < 0 || static_cast<std::size_t>(args.level) >= levels.size())
    throw EngineError(ErrorKind::usage, "--level " + std::to_string(args.level) + ": " + args.input + " has " +
                                       std::to_string(levels.size()) + " level(s), 0 to " +
                                       std::to_string(levels.size() - 1));
  const tiling::Level& l0 = levels.front();
  const tiling::Level& lv = levels[static_cast<std::size_t>(args.level)];

  // Region (level-0) and the output size (pixels of the level).
  tiling::Rect region{0, 0, l0.width, l0.height};
  std::int64_t out_w = lv.width, out_h = lv.height;
  if (!args.region.empty()) {
    region = parse_region(args.region, l0.width, l0.height);
    out_w = std::max<std::int64_t>(1, std::llround(static_cast<double>(region.w) / lv.downsample));
    out_h = std::max<std::int64_t>(1, std::llround(static_cast<double>(region.h) / lv.downsample));
  }
  if (out_w * out_h > kMaxOutputPixels) {
    char mpx[64];
    std::snprintf(mpx, sizeof mpx, "%.0f", static_cast<double>(out_w * out_h) / 1e6);
    throw EngineError(ErrorKind::usage,
                       args.input + ": " + (args.region.empty() ? "level " + std::to_string(args.level) : "the region") +
                           " is " + std::to_string(out_w) + " x " + std::to_string(out_h) + " pixels (" + mpx +
                           " Mpx), more than 64 Mpx; give a smaller --region x,y,w,h (level-0 pixels) or a coarser "
                           "--level");
  }

  // Fail early on outputs that exist (without --force) or cannot be written.
  check_distinct_outputs({{"INPUT", args.input}, {"--out", h_path.string()}, {"--out", d_path.string()}});
  check_output_path(h_path, args.force);
  check_output_path(d_path, args.force);

  scoring::StainVectors base = scoring::StainVectors::defaults();
  if (args.i0) base = *scoring::StainVectors::make(base.hematoxylin, base.dab, *args.i0);
  StainChoice choice = choose_stains(*slide, args.stains, base);
  if (args.i0 && choice.vectors.i0 != *args.i0) {  // an explicit --i0 wins over the file's or the estimate's
    const auto v = scoring::StainVectors::make(choice.vectors.hematoxylin, choice.vectors.dab, *args.i0);
    if (v) choice.vectors = *v;
  }
  if (!choice.warning.empty()) std::fprintf(stderr, "ihcscore: warning: %s\n", choice.warning.c_str());

  cv::Mat rgb;
  try {
    rgb = slide->read_region(args.level, region.x, region.y, static_cast<int>(out_w), static_cast<int>(out_h));
  } catch (const tiling::SlideError& e) {
    throw EngineError(ErrorKind::input, args.input + ": " + e.what());
  }
  // As scoring sees it (docs/algorithm.md, step 2): a level that keeps one colour per block of
  // pixels has it given back to them by optical density (nothing to do for 1 x 1).
  scoring::restore_subsampled_chroma(rgb, lv.chroma_x, lv.chroma_y,
                                     static_cast<int>(static_cast<double>(region.x) / lv.downsample),
                                     static_cast<int>(static_cast<double>(region.y) / lv.downsample));
  const scoring::Deconvolved d = scoring::deconvolve(rgb, choice.vectors);

  std::optional<double> out_mpp;
  if (slide->mpp()) out_mpp = *slide->mpp() * lv.downsample;
  const std::string where = "region " + std::to_string(region.x) + "," + std::to_string(region.y) + "," +
                            std::to_string(region.w) + "," + std::to_string(region.h) + " level " +
                            std::to_string(args.level) + " of " + args.input + "; stains " +
                            choice.vectors.to_string() + " (" + choice.source + ")";

  // Both files to temporaries, then both renamed: both or neither.
  const fs::path h_tmp = temporary_sibling(h_path), d_tmp = temporary_sibling(d_path);
  std::error_code ec;
  {
    RemoveOnSignal cleanup({h_tmp, d_tmp});
    try {
      write_float_tiff(h_tmp, h_path, d.hematoxylin, out_mpp,
                       "ihcscore deconvolve: haematoxylin concentration (OD units); " + where);
      write_float_tiff(d_tmp, d_path, d.dab, out_mpp, "ihcscore deconvolve: DAB concentration (OD units); " + where);
      fs::rename(d_tmp, d_path);
    } catch (const fs::filesystem_error& e) {
      fs::remove(h_tmp, ec);
      fs::remove(d_tmp, ec);
      throw EngineError(ErrorKind::output, d_path.string() + ": cannot be written: " + e.code().message());
    } catch (...) {
      fs::remove(h_tmp, ec);
      fs::remove(d_tmp, ec);
      throw;
    }
    try {
      fs::rename(h_tmp, h_path);
    } catch (const fs::filesystem_error& e) {
      fs::remove(h_tmp, ec);
      fs::remove(d_path, ec);  // the pair is incomplete: take the DAB half back out
      throw EngineError(ErrorKind::output, h_path.string() + ": cannot be written: " + e.code().message());
    }
  }

  std::cout << "deconvolved " << out_w << " x " << out_h << " pixels (level " << args.level << ") of " << args.input
            << "\n  stains: " << choice.vectors.to_string() << " (" << choice.source << ")\n"
            << "  hematoxylin: " << h_path.string() << "\n  dab: " << d_path.string() << "\n";
  return kExitOk;
}

}  // namespace

void add_deconvolve_command(CLI::App& app, CommandRunner& run) {
  auto args = std::make_shared<DeconvolveArgs>();
  CLI::App* cmd = app.add_subcommand(
      "deconvolve", "Write haematoxylin and DAB concentration images (32-bit float TIFF) of a slide region");
  cmd->add_option("INPUT", args->input, "Whole-slide image (any OpenSlide format) or plain image (PNG, JPEG, TIFF)")
      ->required();
  cmd->add_option("--region", args->region,
                  "x,y,w,h in level-0 pixels (default: the whole level, if it is at most 64 Mpx)");
  cmd->add_option("--level", args->level, "Pyramid level to read (0 = full resolution)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--mpp", args->mpp, "Micrometres per pixel of the image (overrides the file's value)")
      ->check(finite_positive());
  cmd->add_option("--stains", args->stains,
                  "Stain vectors: default, estimate (from this slide) or a file (JSON {\"hematoxylin\":[r,g,b],"
                  "\"dab\":[r,g,b],\"i0\":255} or hematoxylin=r,g,b;dab=r,g,b;i0=255)")
      ->capture_default_str();
  cmd->add_option("--i0", args->i0, "Background (incident light) intensity for optical density (default 255; "
                                    "overrides the estimate's or the file's)")
      ->check(CLI::Range(2.0, 255.0));
  cmd->add_option("--out", args->out, "Output prefix: writes PREFIX_hematoxylin.tif and PREFIX_dab.tif")->required();
  cmd->add_flag("--force", args->force, "Replace output files that already exist");
  cmd->callback([args, &run] {
    run = [args]() -> int { return run_deconvolve(*args); };
  });
}

}  // namespace ihc::cli
