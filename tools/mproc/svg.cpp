// svg.cpp: SvgWriter (svg.hpp).
#include "svg.hpp"

#include <cmath>
#include <cstdio>

namespace mproc::tool {

SvgWriter::SvgWriter(double width, double height) {
  out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  open("svg", {{"xmlns", "http://www.w3.org/2000/svg"},
               {"width", num(width)},
               {"height", num(height)},
               {"viewBox", "0 0 " + num(width) + " " + num(height)},
               {"font-family", "DejaVu Sans, Helvetica, Arial, sans-serif"},
               {"font-size", "12"}});
}

void SvgWriter::open(std::string_view tag, Attrs attrs) {
  start_tag(tag, attrs);
  out_ += ">\n";
  open_.emplace_back(tag);
}

void SvgWriter::close() {
  if (open_.empty()) return;
  std::string tag = std::move(open_.back());
  open_.pop_back();
  indent();
  out_ += "</" + tag + ">\n";
}

void SvgWriter::leaf(std::string_view tag, Attrs attrs, std::string_view text) {
  start_tag(tag, attrs);
  if (text.empty()) {
    out_ += "/>\n";
    return;
  }
  out_ += ">" + escape(text) + "</";
  out_ += tag;
  out_ += ">\n";
}

void SvgWriter::comment(std::string_view text) {
  std::string safe(text);
  for (std::size_t at = safe.find("--"); at != std::string::npos; at = safe.find("--", at)) safe.replace(at, 2, "- -");
  indent();
  out_ += "<!-- " + safe + " -->\n";
}

std::string SvgWriter::finish() {
  while (!open_.empty()) close();
  return std::move(out_);
}

std::string SvgWriter::escape(std::string_view text) {
  std::string s;
  s.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        s += "&amp;";
        break;
      case '<':
        s += "&lt;";
        break;
      case '>':
        s += "&gt;";
        break;
      case '"':
        s += "&quot;";
        break;
      case '\'':
        s += "&apos;";
        break;
      default:
        bool forbidden = static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r';
        s += forbidden ? '?' : c;
    }
  }
  return s;
}

std::string SvgWriter::num(double value) {
  if (!std::isfinite(value)) value = 0;  // never "nan" or "inf" in an attribute
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f", value);
  std::string s = buf;
  s.erase(s.find_last_not_of('0') + 1);  // "%.2f" always has a '.', so this stops there
  if (s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

void SvgWriter::start_tag(std::string_view tag, Attrs attrs) {
  indent();
  out_ += "<";
  out_ += tag;
  for (const auto& [name, value] : attrs) {
    out_ += " ";
    out_ += name;
    out_ += "=\"" + escape(value) + "\"";
  }
}

void SvgWriter::indent() { out_.append(open_.size() * 2, ' '); }

}  // namespace mproc::tool
