// SPDX-License-Identifier: Apache-2.0
// Writes a large synthetic ORU^R01 file for the HL7 benchmarks: gen_oru_bench OUT [N] [SEED].
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

namespace {

struct Analyte {
  std::string_view loinc;
  std::string_view name;
  std::string_view local;
  std::string_view units;
  std::string_view range;
  double low;  // values are drawn from [low, high]
  double high;
  int decimals;
};

constexpr std::array<Analyte, 20> kAnalytes = {{
    {"2276-4", "FERRITIN", "457", "ng/mL", "16-232", 5, 400, 0},
    {"26746-8", "MAGNESIUM, RBC", "5900945", "mg/dL", "4.0-6.4", 3, 7, 1},
    {"19123-9", "MAGNESIUM", "622", "mg/dL", "1.5-2.5", 1.2, 2.8, 1},
    {"2283-0", "FOLATE, RBC", "467", "ng/mL", ">280", 200, 1400, 0},
    {"2284-8", "FOLATE, SERUM", "466", "ng/mL", ">5.9", 3, 24, 1},
    {"5761-2", "ZINC, RBC", "5900532", "mg/L", "9.0-14.7", 8, 16, 1},
    {"5763-8", "ZINC", "945", "ug/dL", "60-130", 50, 150, 0},
    {"13965-9", "HOMOCYSTEINE", "31789", "umol/L", "<11.4", 4, 20, 1},
    {"62292-8", "VITAMIN D,25-OH,TOTAL,IA", "17306", "ng/mL", "30-100", 8, 90, 0},
    {"2923-1", "VITAMIN A (RETINOL)", "926", "mcg/dL", "38-98", 30, 110, 0},
    {"2132-9", "VITAMIN B12", "927", "pg/mL", "200-1100", 150, 1800, 0},
    {"2498-4", "IRON, TOTAL", "7573", "ug/dL", "40-190", 20, 220, 0},
    {"2500-7", "TIBC", "7573", "ug/dL", "250-450", 240, 460, 0},
    {"2502-3", "IRON SATURATION", "7573", "%", "15-55", 8, 60, 0},
    {"3016-3", "TSH", "899", "mIU/L", "0.40-4.50", 0.2, 6, 2},
    {"3024-7", "T4, FREE", "866", "ng/dL", "0.8-1.8", 0.6, 2, 1},
    {"3051-0", "T3, FREE", "34429", "pg/mL", "2.3-4.2", 2, 4.6, 1},
    {"1558-6", "GLUCOSE, FASTING", "483", "mg/dL", "65-99", 60, 140, 0},
    {"30522-7", "HS CRP", "10124", "mg/L", "<3.0", 0.1, 9, 1},
    {"718-7", "HEMOGLOBIN", "7", "g/dL", "11.7-15.5", 10, 17, 1},
}};

constexpr std::array<std::string_view, 12> kFamily = {
    "FICTORA",  "PLACEHOLT", "TESTWELL", "EXAMPLAR", "MOCKLEY",   "FAKEWOOD",
    "TRIALSON", "SAMPLEBY",  "DUMMONT",  "NOTAREAL", "SYNTHERON", "PROTOTYP"};
constexpr std::array<std::string_view, 12> kGiven = {"CORA", "KAI", "LENA", "HANA", "GIA", "FINN",
                                                     "LEO",  "BEA", "ABE",  "INES", "MAX", "ZOE"};

class Writer {
 public:
  explicit Writer(std::FILE* f) : f_(f) { buf_.reserve(1u << 20); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer() { flush(); }

  Writer& operator<<(std::string_view s) {
    buf_.append(s);
    if (buf_.size() > (1u << 20) - 4096) {
      flush();
    }
    return *this;
  }
  Writer& operator<<(char c) { return *this << std::string_view(&c, 1); }
  Writer& num(std::uint64_t v, int width = 0) {
    std::array<char, 24> tmp{};
    const auto [end, ec] = std::to_chars(tmp.data(), tmp.data() + tmp.size(), v);
    const auto len = static_cast<int>(end - tmp.data());
    for (int i = len; i < width; ++i) {
      buf_.push_back('0');
    }
    return *this << std::string_view(tmp.data(), static_cast<std::size_t>(len));
  }
  Writer& decimal(double v, int decimals) {
    std::array<char, 32> tmp{};
    const auto [end, ec] =
        std::to_chars(tmp.data(), tmp.data() + tmp.size(), v, std::chars_format::fixed, decimals);
    return *this << std::string_view(tmp.data(), static_cast<std::size_t>(end - tmp.data()));
  }
  bool flush() {
    const bool ok = std::fwrite(buf_.data(), 1, buf_.size(), f_) == buf_.size();
    buf_.clear();
    return ok;
  }

 private:
  std::FILE* f_;
  std::string buf_;
};

// YYYYMMDDHHMMSS-0500 for a day offset from 2024-01-01 (months of 28 days keep it simple and
// valid).
void timestamp(Writer& w, std::uint64_t day, std::uint64_t minute_of_day) {
  w.num(2024 + day / 336, 4).num(day % 336 / 28 + 1, 2).num(day % 28 + 1, 2);
  w.num(minute_of_day / 60, 2).num(minute_of_day % 60, 2).num(0, 2) << "-0500";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT [MESSAGES=100000] [SEED=20260301]\n", argv[0]);
    return 2;
  }
  const std::string_view count_arg = argc > 2 ? argv[2] : "100000";
  const std::string_view seed_arg = argc > 3 ? argv[3] : "20260301";
  std::uint64_t messages = 0;
  std::uint64_t seed = 0;
  if (std::from_chars(count_arg.data(), count_arg.data() + count_arg.size(), messages).ec !=
          std::errc() ||
      std::from_chars(seed_arg.data(), seed_arg.data() + seed_arg.size(), seed).ec != std::errc()) {
    std::fprintf(stderr, "MESSAGES and SEED must be numbers\n");
    return 2;
  }
  std::FILE* f = std::fopen(argv[1], "wb");
  if (f == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  std::mt19937_64 rng(seed);
  const auto pick = [&rng](std::uint64_t n) { return rng() % n; };
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uint64_t obx_total = 0;
  {
    Writer w(f);
    for (std::uint64_t m = 0; m < messages; ++m) {
      const std::uint64_t day = pick(900);
      const std::uint64_t drawn = 360 + pick(300);
      const std::uint64_t person = pick(5000);
      w << "MSH|^~\\&|LAB|QDX^00D0000001^CLIA|SYNTHEHR|SYNTHCLINIC|";
      timestamp(w, day + 1, drawn + 120);
      w << "||ORU^R01|QDX3";
      w.num(m, 8) << "|P|2.3|||NE|NE\r";
      w << "PID|1|QX";
      w.num(person, 8) << "|Q";
      w.num(person, 8) << "^^^QDX^MR||" << kFamily[person % kFamily.size()] << '^'
                       << kGiven[person / 7 % 12] << "^L||19";
      w.num(40 + person % 60, 2).num(person % 12 + 1, 2).num(person % 28 + 1, 2)
          << '|' << (person % 2 ? "F" : "M");
      w << "|||";
      w.num(100 + person % 900) << " Test Lane^^Nowhere^ZZ^";
      w.num(10000 + person, 5) << "||555-0";
      w.num(person % 1000, 3) << "\r";
      w << "ORC|RE|ORD";
      w.num(m, 6) << "|Q";
      w.num(m, 7) << "^QDX||CM||||";
      timestamp(w, day + 1, drawn + 120);
      w << "|||1234567890^NOTREAL^DOCTOR^^^^MD\r";
      w << "OBR|1|ORD";
      w.num(m, 6) << "|Q";
      w.num(m, 7) << "^QDX|7444^NUTRITION PANEL^L|||";
      timestamp(w, day, drawn);
      w << "|||||||";
      timestamp(w, day, drawn + 90);
      w << "||1234567890^NOTREAL^DOCTOR^^^^MD||||||";
      timestamp(w, day + 1, drawn + 120);
      w << "|||F\r";
      if (pick(4) == 0) {
        w << "NTE|1|L|Fasting: YES\r";
      }
      const std::uint64_t n_obx = 8 + pick(5);  // 8..12, about 10
      const std::uint64_t first = pick(kAnalytes.size());
      for (std::uint64_t i = 0; i < n_obx; ++i) {
        const Analyte& a = kAnalytes[(first + i) % kAnalytes.size()];
        const double v = a.low + (a.high - a.low) * unit(rng);
        const std::uint64_t style = pick(20);
        w << "OBX|";
        w.num(i + 1) << (style == 0   ? "|SN|"
                         : style == 1 ? "|ST|"
                                      : "|NM|")
                     << a.loinc << '^' << a.name << "^LN^" << a.local << '^' << a.name
                     << "^99QDX||";
        if (style == 0) {
          w << "<^";
          w.decimal(a.low, a.decimals);
        } else if (style == 1) {
          w << ">";
          w.decimal(a.high, a.decimals);
        } else {
          w.decimal(v, a.decimals);
        }
        // The flag agrees with what is written (labwatch refuses a flag that points the other way
        // from the value): a censored value is flagged on its own side.
        const char* flag = style == 0         ? "L"
                           : style == 1       ? "H"
                           : v > a.high * 0.9 ? "H"
                           : v < a.low * 1.2  ? "L"
                                              : "";
        w << '|' << a.units << '|' << a.range << '|' << flag << "|||" << (pick(50) == 0 ? "C" : "F")
          << "|||";
        timestamp(w, day, drawn);
        w << "|TP^QDX SYNTH LAB TAMPA\r";
        if (pick(15) == 0) {
          w << "NTE|1|L|Adults \\T\\ adolescents: see note\\.br\\Method: ECLIA \\F\\ Roche\r";
        }
        ++obx_total;
      }
    }
    if (!w.flush()) {
      std::perror(argv[1]);
      return 1;
    }
  }
  if (std::fclose(f) != 0) {
    std::perror(argv[1]);
    return 1;
  }
  std::printf("wrote %llu messages, %llu OBX to %s\n", static_cast<unsigned long long>(messages),
              static_cast<unsigned long long>(obx_total), argv[1]);
  return 0;
}
