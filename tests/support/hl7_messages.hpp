// SPDX-License-Identifier: Apache-2.0
// HL7 v2 messages for tests: a small ORU^R01 of the QDX dialect, built from a few values.
#pragma once

#include <string>

namespace labwatch::test {

// One ORU^R01 message of QDX about patient `mrn`: a ferritin of `ferritin` ng/mL, and an hs-CRP
// of `crp` (a number, or text that is refused as non_numeric_value).
inline std::string oru(const std::string& control_id, const std::string& mrn,
                       const std::string& order, const std::string& ferritin,
                       const std::string& crp) {
  return "MSH|^~\\&|LAB|QDX|APP|CLINIC|20250811110500-0500||ORU^R01|" + control_id +
         "|P|2.3\r"
         "PID|1||" +
         mrn +
         "^^^QDX^MR||DOE^JANE||19800102|F\r"
         "OBR|1|" +
         order + "|" + order +
         "^QDX|7444^PANEL^L|||20250810090500-0500\r"
         "OBX|1|NM|2276-4^FERRITIN^LN||" +
         ferritin +
         "|ng/mL|16-232||||F\r"
         "OBX|2|NM|30522-7^HS CRP^LN||" +
         crp + "|mg/L|<3.0||||F\r";
}

}  // namespace labwatch::test
