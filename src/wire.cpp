// The wire format's parts that are not templates: see mproc/detail/wire.hpp.
#include "mproc/detail/wire.hpp"

#include <algorithm>
#include <cstring>

#include "mproc/errors.hpp"

namespace mproc::detail {
namespace {

constexpr std::uint8_t kValue = 0, kError = 1;
constexpr std::size_t kEntryBytes = sizeof(Invoker);
constexpr std::size_t kFunctionBytes = sizeof(void (*)());
static_assert(kEntryBytes == sizeof(std::uint64_t) && kFunctionBytes == sizeof(std::uint64_t),
              "code addresses travel as 64-bit module offsets (rename_task_code)");

// Writes the header field at offset of a task frame, once its header is known to be there.
void set_task_field(Writer& task, std::size_t offset, std::uint64_t value) {
  (void)read_task_header(task.bytes());  // throws for a frame too short to hold one
  std::memcpy(task.data() + offset, &value, sizeof value);
}

}  // namespace

void (*task_error_hook)(const std::exception_ptr& e) noexcept = nullptr;

void write_item_error(Writer& out, const std::exception_ptr& e) {
  if (task_error_hook) task_error_hook(e);
  out.write(&kError, 1);
  encode_exception(out, e);
}

void fail_chunk(Writer& out, const std::exception_ptr& e) {
  auto form = ResultForm::failed;
  out.write(&form, 1);
  encode_exception(out, e);
}

void run_chunk(Reader& in, Writer& out) {
  Invoker entry = nullptr;
  in.read(&entry, sizeof entry);
  entry(in, out);
}

TaskHeader read_task_header(std::span<const std::byte> task) {
  TaskHeader h;
  Reader(task).read(&h, sizeof h);
  return h;
}

void set_task_seq(Writer& task, std::uint64_t seq) { set_task_field(task, offsetof(TaskHeader, seq), seq); }

void set_task_batch(Writer& task, std::uint64_t batch) { set_task_field(task, offsetof(TaskHeader, batch), batch); }

std::span<const std::byte> task_chunk(std::span<const std::byte> task) {
  (void)read_task_header(task);
  return task.subspan(sizeof(TaskHeader));
}

namespace wire {
CodeFields code_fields(std::span<std::byte> task) {
  const bool has_function = read_task_header(task).function_module != kNoFunction;
  const std::size_t need = sizeof(TaskHeader) + kEntryBytes + (has_function ? kFunctionBytes : 0);
  if (task.size() < need)
    throw SerializationError("mproc: a task of " + std::to_string(task.size()) + " bytes is too short for its code (" +
                             std::to_string(need) + " bytes)");
  std::byte* entry = task.data() + sizeof(TaskHeader);
  return {entry, has_function ? entry + kEntryBytes : nullptr};
}
}  // namespace wire

void begin_result_frame(Writer& out, bool timed) {
  out.clear();
  out.grow(sizeof(ResultHeader) + (timed ? sizeof(ChunkTiming) : 0));
}

void write_chunk_timing(Writer& out, const ChunkTiming& timing) {
  std::memcpy(out.data() + sizeof(ResultHeader), &timing, sizeof timing);
}

ChunkTiming read_chunk_timing(Reader& r) {
  ChunkTiming t;
  r.read(&t, sizeof t);
  if (t.slow_count > ItemClock::kSlowest) throw SerializationError("mproc: corrupt chunk timing");
  return t;
}

void end_result_frame(Writer& out, const ResultHeader& header) { std::memcpy(out.data(), &header, sizeof header); }

ResultHeader read_result_header(Reader& r) {
  ResultHeader h;
  r.read(&h, sizeof h);
  return h;
}

void write_hello(Writer& out, const std::exception_ptr& error) {
  if (error)
    write_item_error(out, error);
  else
    out.write(&kValue, 1);
}

std::exception_ptr read_hello(Reader& r) {
  std::uint8_t status = kValue;
  r.read(&status, 1);
  if (status == kValue) return nullptr;
  if (status != kError) throw SerializationError("mproc: corrupt hello: bad status byte");
  return decode_exception(r);
}

std::span<const std::byte> ring_message(const Writer& frame, SpillNote& note) {
  if (!frame.in_heap()) return frame.bytes();
  note = SpillNote{};
  std::memcpy(&note.seq, frame.bytes().data(), sizeof note.seq);  // both headers begin with it
  note.at = frame.bytes().data();
  note.size = frame.size();
  return {reinterpret_cast<const std::byte*>(&note), sizeof note};
}

std::optional<SpillNote> read_spill_note(std::span<const std::byte> message) {
  std::uint64_t tag = 0;
  if (message.size() != sizeof(SpillNote)) return std::nullopt;
  std::memcpy(&tag, message.data(), sizeof tag);
  if (tag != kSpillTag) return std::nullopt;
  SpillNote note;
  std::memcpy(&note, message.data(), sizeof note);
  if (note.size < sizeof(std::uint64_t) || !in_shared_heap(note.at, static_cast<std::size_t>(note.size)))
    throw SerializationError("mproc: a spill note names " + std::to_string(note.size) +
                             " bytes outside the shared heap");
  return note;
}

}  // namespace mproc::detail
