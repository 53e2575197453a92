#include "backend/mpi/pool_core.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <iterator>
#include <stdexcept>
#include <string>

#include "backend/mpi/modules.hpp"
#include "backend/mpi/runtime.hpp"
#include "backoff.hpp"
#include "mproc/detail/mpi_backend.hpp"
#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

// About 0.5 ms of work queued on a rank ahead of what it runs, at least 2 chunks to hide the
// round trip over the network, at most 64.
constexpr ChunkBook::Pace kPace{.queue_ahead_ns = 500'000, .first_window = 4, .min_window = 2, .max_window = 64};

}  // namespace

MpiPoolCore::MpiPoolCore(const PoolOptions& options) : book_(*this, kPace, "MpiPool") {
  const int available = mpi::world_size() - 1;
  if (available < 1)
    throw std::runtime_error(
        "mproc: MpiPool needs worker ranks, and this program runs alone: launch it as mpirun -n N ./program "
        "(N >= 2; rank 0 holds the pool, ranks 1 .. N-1 work)");
  PoolOptions checked = options;
  if (!checked.processes) checked.processes = available;
  const unsigned n = checked_pool_size(checked);
  if (n > static_cast<unsigned>(available))
    throw std::invalid_argument("mproc: MpiPool(" + std::to_string(n) + "): this job has only " +
                                std::to_string(available) + " worker rank" + (available == 1 ? "" : "s") +
                                "; launch it with mpirun -n " + std::to_string(n + 1));
  if (options.task_timeout)
    throw std::invalid_argument(
        "mproc: MpiPool does not support task_timeout: a rank cannot be stopped without ending the MPI job");
  if (options.output != Output::inherit)
    throw std::invalid_argument("mproc: MpiPool does not forward output by lines; mpirun --tag-output prefixes it");
  if (options.max_worker_rss)
    throw std::invalid_argument(
        "mproc: MpiPool does not support max_worker_rss: a rank cannot be replaced without ending the MPI job");
  if (options.memory_limit)
    throw std::invalid_argument(
        "mproc: MpiPool does not support memory_limit: a rank cannot be replaced without ending the MPI job "
        "(mpirun and the batch system limit a rank's memory)");
  std::uint32_t init_module = kNoFunction;
  std::uint64_t init_offset = 0;
  if (options.initializer) {
    auto* fn = options.initializer.target<void (*)()>();
    if (!fn)
      throw std::invalid_argument(
          "mproc: MpiPool's initializer must be a plain function (void(*)()): worker ranks find it by its "
          "address in the program; write a captureless lambda as +[] { ... }");
    mpi::Located where = mpi::locate(reinterpret_cast<const void*>(*fn));
    init_module = where.module;
    init_offset = where.offset;
  }
  for (unsigned i = 0; i < n; ++i) workers_.emplace_back(static_cast<int>(i) + 1);
  if (options.insights) insights_ = std::make_unique<InsightsRecorder>("mpi", n, 1);
  mpi::claim_pool();
  try {
    start_workers(init_module, init_offset);
  } catch (...) {
    mpi::release_pool();
    throw;
  }
  comm_thread_ = std::thread([this] { comm_loop(); });
  callback_thread_ = std::thread([this] { callback_loop(); });
}

MpiPoolCore::~MpiPoolCore() {
  if (comm_thread_.joinable()) terminate();
}

void MpiPoolCore::start_workers(std::uint32_t init_module, std::uint64_t init_offset) {
  Writer start;
  start.write(&init_module, sizeof init_module);
  start.write(&init_offset, sizeof init_offset);
  const std::uint8_t timed = insights_ ? 1 : 0;  // the ranks time their chunks (insights)
  start.write(&timed, sizeof timed);
  for (auto& w : workers_) {
    if (init_module != kNoFunction) mpi::announce_modules(w.rank, init_module);
    if (insights_) insights_->started(static_cast<unsigned>(w.rank - 1), 0, now_ns());
    mpi::send(start.bytes(), w.rank, mpi::kStart);
  }
  std::exception_ptr failure;
  for (auto& w : workers_) {
    mpi::receive(mpi::wait_message(w.rank, mpi::kHello), inbox_);
    Reader r(inbox_.bytes());
    std::exception_ptr error = read_hello(r);
    if (error && !failure) failure = error;
  }
  if (failure) {
    stop_workers(false);
    std::rethrow_exception(failure);
  }
}

void MpiPoolCore::stop_workers(bool terminating) {
  for (auto& w : workers_) {
    if (terminating) mpi::send({}, w.rank, mpi::kTerminate);
    mpi::send({}, w.rank, mpi::kStop);
  }
  // Results of chunks that were already running when terminate() came are dropped here.
  for (std::size_t stopped = 0; stopped < workers_.size();) {
    MPI_Status st = mpi::wait_message(MPI_ANY_SOURCE, MPI_ANY_TAG);
    mpi::receive(st, inbox_);
    if (st.MPI_TAG == mpi::kStopped) ++stopped;
  }
  // Every rank has taken every message we sent: the sends are complete.
  for (auto& sent : abandoned_) mpi::check(MPI_Wait(&sent.request, MPI_STATUS_IGNORE), "MPI_Wait", -1);
  abandoned_.clear();
}

// --- the communication thread -----------------------------------------------------------------

void MpiPoolCore::comm_loop() {
  Backoff idle(waits::kMpiComm);  // with chunks in flight and nothing arriving
  bool terminating = false;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      terminating = terminate_requested_;
    }
    if (terminating) {
      abandon();
      break;
    }
    bool progress = dispatch();
    progress |= collect();
    if (std::all_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.inflight.empty(); })) {
      std::unique_lock lock(mu_);
      if (queued_.empty()) {
        if (stop_requested_) break;
        comm_sleeping_ = true;
        wake_comm_.wait(lock, [this] { return !queued_.empty() || stop_requested_ || terminate_requested_; });
        comm_sleeping_ = false;
        idle.restart();
        continue;
      }
    }
    if (progress)
      idle.restart();
    else
      idle.pause();
  }
  stop_workers(terminating);
}

bool MpiPoolCore::dispatch() {
  const std::size_t limit = book_.window();
  std::size_t room = 0;
  for (const auto& w : workers_) room += limit - std::min(limit, w.inflight.size());
  if (room == 0) return false;
  {
    // Only as many as the ranks take now leave the queue, where cancel() finds the rest.
    std::lock_guard lock(mu_);
    for (; room > 0 && !queued_.empty(); --room) {
      sending_.push_back(std::move(queued_.front()));
      queued_.pop_front();
    }
  }
  const bool any = !sending_.empty();
  for (Record& r : sending_) {
    Worker* best = nullptr;
    for (auto& w : workers_)
      if (w.inflight.size() < limit && (!best || w.inflight.size() < best->inflight.size())) best = &w;
    if (r.task.size() > static_cast<std::size_t>(INT_MAX)) {
      r.job->fail(r.first, r.count,
                  std::make_exception_ptr(SerializationError(
                      "mproc: MpiPool: a chunk over 2 GiB cannot be sent; use a smaller chunksize")));
      finished(1);
      continue;
    }
    book_.number(r);
    const TaskHeader h = read_task_header(r.task.bytes());
    std::uint32_t upto = h.entry_module;
    if (h.function_module != kNoFunction) upto = std::max(upto, h.function_module);
    mpi::announce_modules(best->rank, upto);
    MPI_Request request = MPI_REQUEST_NULL;
    mpi::check(MPI_Isend(r.task.data(), static_cast<int>(r.task.size()), MPI_BYTE, best->rank, mpi::kTask, mpi::comm(),
                         &request),
               "MPI_Isend", best->rank);
    best->inflight.push_back(Sent{std::move(r), request});
    if (best->inflight.size() == 1) best->publish_front();
  }
  sending_.clear();
  return any;
}

bool MpiPoolCore::collect() {
  bool any = false;
  for (int i = 0; i < 64; ++i) {
    int flag = 0;
    MPI_Status st{};
    mpi::check(MPI_Iprobe(MPI_ANY_SOURCE, mpi::kResult, mpi::comm(), &flag, &st), "MPI_Iprobe", -1);
    if (!flag) break;
    mpi::receive(st, inbox_);
    handle_result(workers_.at(static_cast<std::size_t>(st.MPI_SOURCE - 1)));
    any = true;
  }
  return any;
}

void MpiPoolCore::handle_result(Worker& w) {
  Reader r(inbox_.bytes());
  const ResultHeader h = read_result_header(r);
  ChunkTiming timing;
  if (insights_) timing = read_chunk_timing(r);
  if (w.inflight.empty() || w.inflight.front().record.seq != h.seq) {
    std::fprintf(stderr, "mproc: rank 0: rank %d sent a result for a task it was not given; ending the job\n", w.rank);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  Sent sent = std::move(w.inflight.front());
  w.inflight.pop_front();
  w.publish_front();
  mpi::check(MPI_Wait(&sent.request, MPI_STATUS_IGNORE), "MPI_Wait", w.rank);
  book_.chunk_took(h.took_ns);
  Record& rec = sent.record;
  // Before the results: a caller whose job they complete may look at the insights at once.
  if (insights_) insights_->chunk(static_cast<unsigned>(w.rank - 1), *rec.job, rec.first, rec.count, timing);
  rec.read(*rec.job, rec.first, rec.count, r);
  book_.recycle(std::move(rec.task));
  finished(1);
}

void MpiPoolCore::abandon() {
  auto error = terminated_error();
  std::size_t n = 0;
  for (auto& w : workers_) {
    for (auto& sent : w.inflight) {
      Record& r = sent.record;
      r.job->fail(r.first, r.count, error);
      r.job.reset();
      abandoned_.push_back(std::move(sent));  // its send completes when the rank takes it
      ++n;
    }
    w.inflight.clear();
    w.publish_front();
  }
  finished(n);  // what was queued, terminate() failed
}

void MpiPoolCore::finished(std::size_t records) {
  std::lock_guard lock(mu_);
  if (book_.ended(records)) changed_.notify_all();
}

// --- callbacks ------------------------------------------------------------------------------

void MpiPoolCore::defer_completion(std::shared_ptr<JobBase> job) {
  {
    std::lock_guard lock(deferred_mu_);
    if (!callbacks_stop_) {
      deferred_.push_back(std::move(job));
      deferred_cv_.notify_one();
      return;
    }
  }
  job->complete();  // the pool is gone: nobody else will
}

void MpiPoolCore::callback_loop() {
  t_on_pool_thread = true;
  std::unique_lock lock(deferred_mu_);
  for (;;) {
    deferred_cv_.wait(lock, [this] { return !deferred_.empty() || callbacks_stop_; });
    if (deferred_.empty()) return;
    std::deque<std::shared_ptr<JobBase>> jobs;
    jobs.swap(deferred_);
    lock.unlock();
    for (auto& job : jobs) job->complete();
    jobs.clear();
    lock.lock();
  }
}

// --- the caller's side ----------------------------------------------------------------------

void MpiPoolCore::check_running() {
  std::lock_guard lock(mu_);
  book_.check_running();
}

void MpiPoolCore::enqueue(Record record, const char* kind) {
  std::lock_guard lock(mu_);
  book_.check_running();
  if (insights_) insights_->number_call(*record.job, kind);
  queued_.push_back(std::move(record));
  book_.opened();
  if (comm_sleeping_) wake_comm_.notify_one();
}

void MpiPoolCore::close() {
  std::lock_guard lock(mu_);
  book_.close();
}

void MpiPoolCore::join() {
  {
    std::unique_lock lock(mu_);
    book_.check_joinable();
    changed_.wait(lock, [this] { return book_.settled(); });
    stop_requested_ = true;
    wake_comm_.notify_one();
  }
  stop_threads();
}

void MpiPoolCore::terminate() {
  std::deque<Record> dropped;
  {
    std::lock_guard lock(mu_);
    book_.terminate();
    terminate_requested_ = true;
    dropped.swap(queued_);
    book_.ended(dropped.size());
    wake_comm_.notify_one();
    changed_.notify_all();
  }
  auto error = terminated_error();
  for (auto& r : dropped) r.job->fail(r.first, r.count, error);
  stop_threads();
}

bool MpiPoolCore::running(JobBase& job) {
  return std::any_of(workers_.begin(), workers_.end(),
                     [&job](const Worker& w) { return w.front_job.load(std::memory_order_acquire) == &job; });
}

bool MpiPoolCore::cancel(JobBase& job) {
  std::vector<Record> dropped;
  {
    std::lock_guard lock(mu_);
    if (job.ready()) return false;
    if (job.cancel_requested()) return job.cancelled();  // an earlier cancel decided
    dropped = take_chunks_of(queued_, job);
    if (dropped.empty()) return false;  // it did nothing: no mark, as on the other pools
    job.request_cancel();
    job.mark_cancelled();
    if (book_.ended(dropped.size())) changed_.notify_all();
  }
  book_.fail_cancelled(dropped);
  return true;
}

void MpiPoolCore::cancel_queued() {
  std::vector<Record> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.assign(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
    queued_.clear();
    for (auto& r : dropped) {
      r.job->request_cancel();
      r.job->mark_cancelled();
    }
    if (book_.ended(dropped.size())) changed_.notify_all();
  }
  book_.fail_cancelled(dropped);
}

void MpiPoolCore::stop_threads() {
  std::lock_guard lock(threads_mu_);
  if (comm_thread_.joinable()) comm_thread_.join();
  {
    std::lock_guard dl(deferred_mu_);
    callbacks_stop_ = true;
    deferred_cv_.notify_all();
  }
  if (callback_thread_.joinable()) {
    callback_thread_.join();
    mpi::release_pool();  // the ranks have stopped: another pool may start
  }
}

std::vector<int> MpiPoolCore::worker_ranks() const {
  std::vector<int> ranks;
  for (const auto& w : workers_) ranks.push_back(w.rank);
  return ranks;
}

// --- MpiBackend -------------------------------------------------------------------------------

void mpi_name_functions(Writer& task) { rename_task_code(task, mpi::locate); }

MpiBackend::MpiBackend(PoolOptions options) {
  mpi::ensure_started();
  if (mpi::world_rank() != 0) mpi::serve_forever();
  core_ = std::make_unique<MpiPoolCore>(options);
  book_ = &core_->book();
}
MpiBackend::~MpiBackend() = default;
unsigned MpiBackend::size() const noexcept { return core_->size(); }
JobHost* MpiBackend::host() noexcept { return core_.get(); }
void MpiBackend::check_running() const { core_->check_running(); }
void MpiBackend::close() { core_->close(); }
void MpiBackend::join() { core_->join(); }
void MpiBackend::terminate() { core_->terminate(); }
void MpiBackend::cancel_queued() { core_->cancel_queued(); }
std::vector<int> MpiBackend::worker_ranks() const { return core_->worker_ranks(); }
const InsightsRecorder* MpiBackend::insights() const noexcept { return core_->insights(); }

void MpiBackend::shutdown() noexcept { close_and_join(*core_); }

}  // namespace mproc::detail
