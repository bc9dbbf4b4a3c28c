// `ihcscore synth OUT.svs`: writes a synthetic HER2 IHC slide and OUT.svs.truth.json.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "ihc/cli/commands.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/signals.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/text.hpp"
#include "ihc/cli/progress.hpp"
#include "ihc/synth/synth.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::cli {

using namespace ihc::synth;
namespace {
namespace fs = std::filesystem;

struct SynthArgs {
  std::string out;
  SynthOptions options;
  std::string mix = "0.25,0.25,0.25,0.25";
  std::string stain_h = "0.650,0.704,0.286";
  std::string stain_dab = "0.268,0.570,0.776";
  bool force = false;
};

std::array<double, 3> to3(const std::vector<double>& v) { return {v[0], v[1], v[2]}; }

int run_synth(const SynthArgs& args) {
  SynthOptions opts = args.options;
  try {
    const auto mix = parse_number_list(args.mix, 4, "--mix");
    opts.mix = {mix[0], mix[1], mix[2], mix[3]};
    opts.stain_h = to3(parse_number_list(args.stain_h, 3, "--stain-h"));
    opts.stain_dab = to3(parse_number_list(args.stain_dab, 3, "--stain-dab"));
    opts = normalise_synth_options(opts);
  } catch (const std::invalid_argument& e) {
    throw EngineError(ErrorKind::usage, e.what());
  }
  const fs::path out(args.out);
  const fs::path truth_path(args.out + ".truth.json");
  // Learn about unwritable outputs before the long work.
  check_output_path(out, args.force);
  check_output_path(truth_path, args.force);

  SynthTruth truth;
  {
    Progress progress("synth", 0, "tiles/s");
    commit_file_atomically(out, args.force, [&](const fs::path& tmp) {
      std::vector<fs::path> partial{tmp};
      for (const auto& p : tiling::PyramidWriter::temporary_paths(tmp, synth_pyramid_options(opts)))
        partial.push_back(p);
      const RemoveOnSignal cleanup(partial);
      try {
        truth = write_synthetic_slide(tmp, opts, [&](std::int64_t, std::int64_t total) {
          progress.set_total(total);
          progress.advance();
        });
      } catch (const tiling::SlideError& e) {
        throw EngineError(ErrorKind::output, out.string() + ": cannot be written: " + e.what());
      }
    });
    progress.finish();
  }
  write_file_atomically(truth_path, json_text(to_json(truth), 2) + "\n", args.force);

  const auto& p = truth.percent;
  std::printf("%s: %lld x %lld px at %g um/px, %zu levels, %lld tumour cells "
              "(0: %.1f%%, 1+: %.1f%%, 2+: %.1f%%, 3+: %.1f%%), expected score %s (ASCO/CAP 2018)\n",
              out.string().c_str(), static_cast<long long>(opts.width), static_cast<long long>(opts.height), opts.mpp,
              truth.levels.size(), static_cast<long long>(truth.counts.total()), p.p0, p.p1, p.p2, p.p3,
              std::string(scoring::to_string(truth.score_2018)).c_str());
  std::printf("%s: truth written\n", truth_path.string().c_str());
  return kExitOk;
}

}  // namespace

void add_synth_command(CLI::App& app, CommandRunner& run) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* sub = app.add_subcommand(
      "synth", "Writes a synthetic HER2 IHC slide (Aperio SVS, tiled JPEG pyramid) with known per-class "
               "tumour-cell counts in OUT.truth.json");
  sub->add_option("OUT", args->out, "Output slide (.svs)")->required();
  sub->add_option("--width", args->options.width, "Level-0 width in pixels")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{256}, std::int64_t{1000000}));
  sub->add_option("--height", args->options.height, "Level-0 height in pixels")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{256}, std::int64_t{1000000}));
  sub->add_option("--mpp", args->options.mpp, "Micrometres per pixel: 0.25 (AppMag 40) or 0.5 (AppMag 20)")
      ->capture_default_str()
      ->check(CLI::IsMember({0.25, 0.5}));
  sub->add_option("--seed", args->options.seed, "Random seed (same seed, same bytes)")->capture_default_str();
  sub->add_option("--mix", args->mix,
                  "Fractions of tumour cells in classes 0,1+,2+,3+ (normalised to sum 1)")
      ->capture_default_str();
  sub->add_option("--quality", args->options.quality, "JPEG quality")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  sub->add_option("--tile", args->options.tile, "Tile size: 240 or 256")
      ->capture_default_str()
      ->check(CLI::IsMember({240, 256}));
  sub->add_option("--stain-h", args->stain_h, "Haematoxylin optical-density vector r,g,b")->capture_default_str();
  sub->add_option("--stain-dab", args->stain_dab, "DAB optical-density vector r,g,b")->capture_default_str();
  sub->add_flag("--force", args->force, "Replace OUT and OUT.truth.json if they exist");
  sub->add_option("--threads", args->options.threads, "Worker threads (0: all cores); never changes the output")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  sub->callback([&run, args] { run = [args] { return run_synth(*args); }; });
}

}  // namespace ihc::cli
