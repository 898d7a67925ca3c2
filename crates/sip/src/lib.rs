//! Byte-preserving SIP message scanner and editor: start line, header ranges, Via, challenges, framing.
#![forbid(unsafe_code)]
