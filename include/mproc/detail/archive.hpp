// archive.hpp: OutputArchive and InputArchive — cereal binary archives that write to a Writer
// and read from a Reader, so values go straight into mproc's buffers with no iostream between.
// The format is cereal's binary format; every length read is checked against the bytes left.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>

#include <cereal/cereal.hpp>

#include "mproc/detail/buffer.hpp"

namespace mproc::detail {

class OutputArchive : public cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit OutputArchive(Writer& w)
      : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this), w_(w) {}
  void save_binary(const void* data, std::size_t size) { w_.write(data, size); }

 private:
  Writer& w_;
};

class InputArchive : public cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit InputArchive(Reader& r) : cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision>(this), r_(r) {}
  void load_binary(void* data, std::size_t size) { r_.read(data, size); }
  [[nodiscard]] std::size_t remaining() const noexcept { return r_.remaining(); }

 private:
  Reader& r_;
};

// Throws SerializationError: a length read says more than the remaining bytes could hold.
[[noreturn]] void throw_bad_length(unsigned long long length, std::size_t remaining);

// The free functions cereal expects of a binary archive (as cereal/archives/binary.hpp).
template <class T>
inline std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const T& t) {
  ar.save_binary(std::addressof(t), sizeof(t));
}
template <class T>
inline std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, T& t) {
  if constexpr (std::is_same_v<T, bool>) {
    unsigned char byte = 0;
    ar.load_binary(&byte, 1);
    if (byte > 1) throw SerializationError("mproc: decoding a bool found the byte " + std::to_string(byte));
    t = byte != 0;
  } else {
    ar.load_binary(std::addressof(t), sizeof(t));
  }
}
template <class Archive, class T>
inline CEREAL_ARCHIVE_RESTRICT(InputArchive, OutputArchive)
    CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}
template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::SizeTag<T>& t) {
  ar(t.size);
}
// A container's length may not promise more elements than there are bytes left: a corrupt
// or hostile frame must not make the decoder allocate without bound.
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::SizeTag<T>& t) {
  ar(t.size);
  if (static_cast<unsigned long long>(t.size) > ar.remaining())
    throw_bad_length(static_cast<unsigned long long>(t.size), ar.remaining());
}
template <class T>
inline void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::BinaryData<T>& bd) {
  ar.save_binary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
inline void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::BinaryData<T>& bd) {
  ar.load_binary(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace mproc::detail

CEREAL_SETUP_ARCHIVE_TRAITS(mproc::detail::InputArchive, mproc::detail::OutputArchive)
