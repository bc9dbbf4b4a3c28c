// `batch --mpi`: rank 0 coordinates (and scores on a second thread), the other ranks score. The
// per-slide work and the summary are batch.cpp's (score_batch_item, write_batch_summary).
#include "ihc/cli/mpi_batch.hpp"

#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/text.hpp"

#ifdef IHC_HAVE_MPI
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#endif

namespace ihc::cli {

#ifndef IHC_HAVE_MPI

bool mpi_available() { return false; }

int run_mpi_batch(const BatchOptions&, const std::atomic<bool>*) {
  throw EngineError(ErrorKind::usage,
                     "--mpi: this ihcscore was built without MPI (install OpenMPI, e.g. Debian's libopenmpi-dev, and "
                     "configure with -DIHC_WITH_MPI=ON), or use --shard K/N");
}

#else

bool mpi_available() { return true; }

namespace {
namespace fs = std::filesystem;

// Messages. Worker -> rank 0: kReady (its host name, once), then per slide kResult or kFatal.
// Rank 0 -> worker: kWork (one slide) or kStop (no more work: the worker finishes).
enum Tag : int { kReady = 1, kResult = 2, kFatal = 3, kWork = 4, kStop = 5 };

std::string g_out_dir;  // for the message when MPI fails

// MPI errors return (MPI_ERRORS_RETURN on MPI_COMM_WORLD) so that we can say what happened before
// the job is aborted.
void check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr,
               "ihcscore: error: MPI rank %d: %s failed: %.*s (did another rank die?); every slide finished so far has "
               "its report in %s: run the same command again to resume\n",
               rank, what.c_str(), len, text, g_out_dir.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, kExitPartial);
}

void send(const std::string& text, int to, int tag) {
  check(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, to, tag, MPI_COMM_WORLD),
        "sending to rank " + std::to_string(to));
}

struct Message {
  int from = 0;
  int tag = 0;
  std::string text;
};

// A waiting message from `from` (or any rank), if there is one. Polling with a short sleep keeps
// idle ranks off the CPU (a blocking receive spins in OpenMPI).
std::optional<Message> poll(int from) {
  int flag = 0;
  MPI_Status st;
  check(MPI_Iprobe(from, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st), "MPI_Iprobe");
  if (!flag) return std::nullopt;
  int count = 0;
  MPI_Get_count(&st, MPI_CHAR, &count);
  Message m;
  m.from = st.MPI_SOURCE;
  m.tag = st.MPI_TAG;
  m.text.resize(static_cast<std::size_t>(count));
  check(MPI_Recv(m.text.data(), count, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
        "receiving from rank " + std::to_string(st.MPI_SOURCE));
  return m;
}

void nap() { std::this_thread::sleep_for(std::chrono::milliseconds(2)); }

Message wait_for(int from) {
  for (;;) {
    if (auto m = poll(from)) return *m;
    nap();
  }
}

class MpiSession {
 public:
  MpiSession() {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw EngineError(ErrorKind::internal, "--mpi: MPI_Init_thread failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(name, &len);
    host.assign(name, static_cast<std::size_t>(len));
    if (provided < MPI_THREAD_FUNNELED && rank == 0)
      std::fprintf(stderr, "ihcscore: warning: the MPI library gives thread level %d, below MPI_THREAD_FUNNELED\n",
                   provided);
  }
  // Every rank waits for the others without spinning, then MPI ends.
  ~MpiSession() {
    MPI_Request req;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &req) == MPI_SUCCESS) {
      for (int done = 0; MPI_Test(&req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done;) nap();
    }
    MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank = 0, size = 1;
  std::string host;
};

// ---------------------------------------------------------------- ranks 1..N-1

void work(const BatchOptions& opt, const std::atomic<bool>* stop, const std::string& host) {
  send(host, 0, kReady);
  std::optional<ScoreOptions> base;
  for (;;) {
    const Message m = wait_for(0);
    if (m.tag == kStop) return;
    if (m.tag != kWork) continue;
    ItemDone d;
    try {
      const auto j = nlohmann::json::parse(m.text);
      BatchItem item;
      item.id = j.at("id").get<std::string>();
      item.path = j.at("path").get<std::string>();
      if (!j.at("mpp").is_null()) item.mpp = j.at("mpp").get<double>();
      item.roi = j.at("roi").get<std::string>();
      if (!base) base = make_score_options(opt.scoring);
      d = score_batch_item_guarded(opt, *base, item, j.at("hash").get<std::string>(), stop);
    } catch (const EngineError& e) {
      d.fatal_kind = e.kind();
      d.fatal_message = e.what();
    } catch (const std::exception& e) {
      d.fatal_kind = ErrorKind::internal;
      d.fatal_message = std::string("bad work message: ") + e.what();
    }
    send(json_text(item_done_json(d)), 0, d.outcome ? kResult : kFatal);
  }
}

// ---------------------------------------------------------------- rank 0

// Rank 0's own scoring thread: takes one slide at a time from the coordinator.
class LocalWorker {
 public:
  LocalWorker(const BatchOptions& opt, const BatchPlan& plan, const std::atomic<bool>* stop)
      : thread_([this, &opt, &plan, stop] {
          std::unique_lock lock(m_);
          for (;;) {
            cv_.wait(lock, [&] { return quit_ || task_; });
            if (quit_) return;
            const std::size_t index = *task_;
            lock.unlock();
            const BatchItem& item = plan.input.items[index];
            ItemDone d = score_batch_item_guarded(opt, plan.base_options, item, settings_hash(opt.scoring, item), stop);
            lock.lock();
            task_.reset();
            done_ = std::move(d);
          }
        }) {}
  ~LocalWorker() {
    {
      std::lock_guard lock(m_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  LocalWorker(const LocalWorker&) = delete;
  LocalWorker& operator=(const LocalWorker&) = delete;

  void give(std::size_t index) {
    {
      std::lock_guard lock(m_);
      task_ = index;
    }
    cv_.notify_all();
  }
  std::optional<ItemDone> take() {
    std::lock_guard lock(m_);
    std::optional<ItemDone> d = std::move(done_);
    done_.reset();
    return d;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::optional<std::size_t> task_;
  std::optional<ItemDone> done_;
  bool quit_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

int coordinate(const BatchOptions& opt, const std::atomic<bool>* stop, int size, const std::string& host) {
  std::vector<bool> stopped(static_cast<std::size_t>(size), false);  // kStop sent
  auto stop_everyone = [&] {
    for (int r = 1; r < size; ++r)
      if (!stopped[static_cast<std::size_t>(r)]) {
        send("", r, kStop);
        stopped[static_cast<std::size_t>(r)] = true;
      }
  };
  try {
    const BatchPlan plan = prepare_batch(opt);
    const auto n = static_cast<long long>(plan.selected.size());
    std::vector<IndexedRow> rows;
    BatchCounts counts;
    auto log = [&](const std::string& id, const std::string& what) {
      std::fprintf(stderr, "[%zu/%lld] %s: %s\n", rows.size(), n, id.c_str(), what.c_str());
      std::fflush(stderr);
    };
    auto record = [&](std::size_t index, ItemOutcome o, const std::string& where) {
      counts.add(o.result);
      rows.push_back({index, std::move(o.row)});
      log(plan.input.items[index].id, o.note + where);
      write_batch_summary(plan, rows);
    };

    // What needs no scoring, then the rest, largest file first (ties in input order).
    std::vector<std::pair<std::uintmax_t, std::size_t>> todo;
    for (const std::size_t index : plan.selected) {
      const BatchItem& item = plan.input.items[index];
      if (auto o = settle_without_scoring(opt, item, settings_hash(opt.scoring, item)))
        record(index, std::move(*o), "");
      else {
        std::error_code ec;
        const auto bytes = fs::file_size(item.path, ec);
        todo.emplace_back(ec ? 0 : bytes, index);
      }
    }
    std::stable_sort(todo.begin(), todo.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::deque<std::size_t> queue;
    for (const auto& t : todo) queue.push_back(t.second);

    std::map<int, std::size_t> in_flight;  // rank -> input index; rank 0 is the local thread
    std::vector<std::string> hosts(static_cast<std::size_t>(size));
    hosts[0] = host;
    bool interrupted = false;
    std::optional<EngineError> fatal;
    auto where = [&](int r) { return " on rank " + std::to_string(r) + " (" + hosts[static_cast<std::size_t>(r)] + ")"; };
    // Hands out the next slide to rank r; false when there is none to give.
    auto next_for = [&](int r, const std::function<void(std::size_t)>& give) {
      if (interrupted || fatal || queue.empty()) return false;
      const std::size_t index = queue.front();
      queue.pop_front();
      in_flight[r] = index;
      give(index);
      return true;
    };
    auto finished = [&](int r, ItemDone d) {
      const std::size_t index = in_flight.at(r);
      in_flight.erase(r);
      if (!d.outcome) {
        if (!fatal) fatal.emplace(d.fatal_kind, d.fatal_message);
      } else if (d.outcome->result == ItemResult::kInterrupted) {
        interrupted = true;
      } else {
        record(index, std::move(*d.outcome), where(r));
      }
    };

    {
      LocalWorker local(opt, plan, stop);
      bool local_busy = false;
      int remote_active = size - 1;
      auto give_up_at = std::chrono::steady_clock::time_point::max();
      for (;;) {
        if (stop && stop->load() && !interrupted) {
          interrupted = true;
          give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds(5);
          std::string busy;
          for (const auto& [r, index] : in_flight)
            busy += (busy.empty() ? "" : ", ") + plan.input.items[index].id + " (rank " + std::to_string(r) + ")";
          std::fprintf(stderr,
                       "ihcscore: rank 0 stopping on a signal (Ctrl-C, or mpirun ending the job because a rank "
                       "died)%s; %zu of %lld slides are done and in %s: run the same command again to resume\n",
                       busy.empty() ? "" : ("; not finished: " + busy).c_str(), rows.size(), n,
                       plan.summary_path.string().c_str());
          std::fflush(stderr);
        }
        // Ranks that were told to stop answer within moments; one that does not is dead or stuck.
        if (interrupted && in_flight.count(0) == 0 && std::chrono::steady_clock::now() > give_up_at) {
          write_batch_summary(plan, rows);
          std::string silent;
          for (int r = 1; r < size; ++r)
            if (!stopped[static_cast<std::size_t>(r)]) silent += (silent.empty() ? "" : ", ") + std::to_string(r);
          std::fprintf(stderr, "ihcscore: error: rank(s) %s did not answer after the stop; aborting the MPI job\n",
                       silent.c_str());
          std::fflush(stderr);
          MPI_Abort(MPI_COMM_WORLD, kExitInterrupted);
        }
        bool progress = false;
        if (local_busy) {
          if (auto d = local.take()) {
            finished(0, std::move(*d));
            local_busy = false;
            progress = true;
          }
        }
        if (!local_busy)
          local_busy = next_for(0, [&](std::size_t index) { local.give(index); });
        while (auto m = poll(MPI_ANY_SOURCE)) {
          progress = true;
          const int r = m->from;
          if (m->tag == kReady) {
            hosts[static_cast<std::size_t>(r)] = m->text;
          } else if (m->tag == kResult || m->tag == kFatal) {
            ItemDone d;
            try {
              d = item_done_from_json(nlohmann::json::parse(m->text));
            } catch (const std::exception& e) {
              d.fatal_kind = ErrorKind::internal;
              d.fatal_message = "bad message from rank " + std::to_string(r) + ": " + e.what();
            }
            finished(r, std::move(d));
          } else {
            continue;
          }
          const bool gave = next_for(r, [&](std::size_t index) {
            const BatchItem& item = plan.input.items[index];
            const nlohmann::json j = {{"id", item.id},
                                      {"path", item.path.string()},
                                      {"mpp", item.mpp ? nlohmann::json(*item.mpp) : nlohmann::json()},
                                      {"roi", item.roi},
                                      {"hash", settings_hash(opt.scoring, item)}};
            send(j.dump(), r, kWork);
          });
          if (!gave) {
            send("", r, kStop);
            stopped[static_cast<std::size_t>(r)] = true;
            --remote_active;
          }
        }
        if (!local_busy && remote_active == 0) break;
        if (!progress) nap();
      }
    }
    write_batch_summary(plan, rows);
    if (fatal) throw *fatal;
    return finish_batch(plan, counts, rows.size(), interrupted);
  } catch (...) {
    stop_everyone();
    throw;
  }
}

}  // namespace

int run_mpi_batch(const BatchOptions& opt, const std::atomic<bool>* stop) {
  g_out_dir = opt.out.string();
  MpiSession mpi;
  if (mpi.rank == 0) return coordinate(opt, stop, mpi.size, mpi.host);
  work(opt, stop, mpi.host);
  return kExitOk;
}

#endif

}  // namespace ihc::cli
