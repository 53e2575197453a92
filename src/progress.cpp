// Progress bars and on_update calls: see mproc/progress.hpp.
#include "mproc/progress.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include "mproc/detail/job.hpp"
#include "mproc/detail/wait.hpp"
#include "os/os.hpp"

namespace mproc::detail {

class ProgressMeter {
 public:
  ProgressMeter(Progress progress, std::optional<std::size_t> total);
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;
  ~ProgressMeter();

  void update(std::size_t done) noexcept;
  void set_total(std::size_t total) noexcept;

 private:
  static constexpr std::size_t kUnknown = SIZE_MAX;

  void finish_if_done() noexcept;
  // Under mu_: draws the bar or calls on_update; final: the last time, with the total.
  void deliver(std::size_t done, bool final) noexcept;
  void draw(std::size_t done, bool final) noexcept;
  [[nodiscard]] std::string line(std::size_t done, std::size_t total) const;

  Progress progress_;
  const bool draws_;
  const std::int64_t start_ns_ = now_ns();
  std::atomic<std::size_t> total_;
  std::atomic<std::size_t> done_{0};
  std::atomic<std::int64_t> next_ns_{0};  // no redraw before then, but the last
  std::atomic<bool> finished_{false};
  std::mutex mu_;          // held while drawing or calling on_update: one at a time, counts in order
  std::size_t shown_ = 0;  // the count last delivered; guarded by mu_
};

namespace {

// The one bar a process draws at a time, so that two never cut into each other's line.
std::mutex g_bar_mu;
const ProgressMeter* g_bar_owner = nullptr;  // guarded by g_bar_mu

std::string clock_text(double seconds) {
  auto s = static_cast<long long>(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", s / 60, s % 60);
  return buf;
}

std::size_t terminal_width() {
  const auto columns = os::terminal_columns(2);
  return columns && *columns >= 20 ? *columns : 80;
}

}  // namespace

ProgressMeter::ProgressMeter(Progress progress, std::optional<std::size_t> total)
    : progress_(std::move(progress)),
      draws_(!progress_.on_update && (progress_.force || os::is_terminal(2))),
      total_(total.value_or(kUnknown)) {
  if (draws_) {
    std::lock_guard lock(mu_);
    deliver(0, false);  // drawn at once, as tqdm does
  }
}

ProgressMeter::~ProgressMeter() {
  // A call given up before its end (an imap left early): its bar still ends its line. Not
  // on_update: the caller, who left, may have let go of what it uses.
  if (finished_.exchange(true) || !draws_) return;
  std::lock_guard lock(mu_);
  draw(done_.load(), true);
}

void ProgressMeter::update(std::size_t done) noexcept {
  // The highest count wins: reports from two threads may arrive out of order.
  std::size_t seen = done_.load(std::memory_order_relaxed);
  while (seen < done && !done_.compare_exchange_weak(seen, done, std::memory_order_acq_rel)) {
  }
  const std::size_t total = total_.load(std::memory_order_acquire);
  if (total != kUnknown && done >= total) return finish_if_done();
  if (now_ns() < next_ns_.load(std::memory_order_relaxed)) return;
  std::unique_lock lock(mu_, std::try_to_lock);  // another thread draws now: this count can wait
  if (!lock || finished_.load()) return;
  const std::size_t now_done = done_.load(std::memory_order_acquire);
  if (total != kUnknown && now_done >= total) return;  // the last delivery is the finisher's
  deliver(now_done, false);
}

void ProgressMeter::set_total(std::size_t total) noexcept {
  total_.store(total, std::memory_order_release);
  finish_if_done();
}

void ProgressMeter::finish_if_done() noexcept {
  const std::size_t total = total_.load(std::memory_order_acquire);
  if (total == kUnknown || done_.load(std::memory_order_acquire) < total) return;
  if (finished_.exchange(true)) return;
  std::lock_guard lock(mu_);
  deliver(total, true);
}

void ProgressMeter::deliver(std::size_t done, bool final) noexcept {
  if (done < shown_ && !final) return;
  shown_ = std::max(shown_, done);
  next_ns_.store(now_ns() + std::chrono::nanoseconds(progress_.interval).count(), std::memory_order_relaxed);
  if (progress_.on_update) {
    const std::size_t total = total_.load(std::memory_order_acquire);
    try {
      progress_.on_update(done, total == kUnknown ? 0 : total);
    } catch (...) {
      // A progress report must not fail the call whose chunks it counts.
    }
  } else if (draws_) {
    draw(done, final);
  }
}

void ProgressMeter::draw(std::size_t done, bool final) noexcept {
  std::lock_guard bar(g_bar_mu);
  if (!g_bar_owner) g_bar_owner = this;
  if (g_bar_owner != this) return;  // another call's bar is on the line
  try {
    std::string text = "\r" + line(done, total_.load(std::memory_order_acquire)) + "\x1b[K";
    if (final) text += '\n';
    os::write_all(2, text.data(), text.size());  // one write: never mixed with another bar's
  } catch (...) {
    // stderr closed or full: the work goes on without its bar.
  }
  if (final) g_bar_owner = nullptr;
}

std::string ProgressMeter::line(std::size_t done, std::size_t total) const {
  const double elapsed = static_cast<double>(now_ns() - start_ns_) / 1e9;
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  char stats[128];
  std::string head = progress_.desc.empty() ? "" : progress_.desc + ": ";
  if (total == kUnknown) {
    std::snprintf(stats, sizeof stats, "%zu it [%s, %.1f it/s]", done, clock_text(elapsed).c_str(), rate);
    return head + stats;
  }
  const double frac = total ? static_cast<double>(std::min(done, total)) / static_cast<double>(total) : 1.0;
  const std::string left = rate > 0 ? clock_text(static_cast<double>(total - std::min(done, total)) / rate) : "?";
  std::snprintf(stats, sizeof stats, "| %zu/%zu [%s<%s, %.1f it/s]", done, total, clock_text(elapsed).c_str(),
                left.c_str(), rate);
  char percent[8];
  std::snprintf(percent, sizeof percent, "%3d%%|", static_cast<int>(frac * 100));
  const std::size_t used = head.size() + std::string_view(percent).size() + std::string_view(stats).size();
  const std::size_t width = terminal_width();
  const std::size_t bar = width > used + 11 ? std::min<std::size_t>(width - used - 1, 40) : 10;
  const auto filled = static_cast<std::size_t>(frac * static_cast<double>(bar));
  return head + percent + std::string(filled, '#') + std::string(bar - filled, ' ') + stats;
}

std::shared_ptr<ProgressMeter> start_progress(Progress progress, std::optional<std::size_t> total) {
  return std::make_shared<ProgressMeter>(std::move(progress), total);
}

void report_progress(ProgressMeter& meter, std::size_t done) noexcept { meter.update(done); }
void report_total(ProgressMeter& meter, std::size_t total) noexcept { meter.set_total(total); }

}  // namespace mproc::detail
