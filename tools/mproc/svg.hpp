// svg.hpp: SvgWriter — a small writer of SVG documents for `mproc timeline`: elements with
// attributes and text, every value escaped, indentation by depth, nothing left unclosed.
//
// Not a general XML library: it writes only what timeline.cpp needs, and it writes well-formed
// XML whatever the text (thread names and call names come from a trace file, that is, from anyone).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mproc::tool {

class SvgWriter {
 public:
  // One attribute: name="value"; the value is escaped when written.
  using Attr = std::pair<std::string_view, std::string>;
  using Attrs = std::initializer_list<Attr>;

  // Starts the document: the XML declaration and the root <svg> of the given size in pixels.
  SvgWriter(double width, double height);

  // <tag attrs> ... </tag>: open() and close() nest; close() ends the innermost open element.
  void open(std::string_view tag, Attrs attrs = {});
  void close();
  // <tag attrs/>, or <tag attrs>text</tag> when text is not empty.
  void leaf(std::string_view tag, Attrs attrs, std::string_view text = {});
  // <!-- text -->, with any "--" (which would end it early) broken up.
  void comment(std::string_view text);
  // Closes whatever is still open, the root included, and returns the document.
  [[nodiscard]] std::string finish();

  // Text made safe for XML 1.0 content and attribute values: & < > " ' as entities; control
  // characters XML 1.0 forbids (all below 0x20 but tab, newline, return) as '?'.
  [[nodiscard]] static std::string escape(std::string_view text);
  // A coordinate or length: at most two decimals, no trailing zeros ("12", "12.5", "0.25").
  [[nodiscard]] static std::string num(double value);

 private:
  void start_tag(std::string_view tag, Attrs attrs);
  void indent();

  std::string out_;
  std::vector<std::string> open_;  // the tags open now, the root first
};

}  // namespace mproc::tool
