//! The serial line protocol (docs/serial-protocol.md) as pure encode/decode functions.

use std::fmt::Write as _;

/// Protocol version announced in `HELLO` and expected back.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// Longest line, terminator excluded, that either side must accept.
pub(crate) const MAX_LINE: usize = 256;

/// CRC-8 (polynomial 0x07, initial value 0, no reflection, no final xor; "CRC-8/SMBUS").
pub(crate) fn crc8(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &byte in bytes {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A line the host (the daemon) sends to the microcontroller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostLine {
    /// Handshake: resets the sequence, turns everything off and sets the channel count and timeout.
    Hello {
        /// Sequence number.
        seq: u32,
        /// Channels in every following frame.
        channels: usize,
        /// Silence after which the microcontroller must stop all outputs.
        timeout_ms: u32,
    },
    /// Set every channel's level (permille).
    Frame {
        /// Sequence number.
        seq: u32,
        /// One level per channel, 0..=1000.
        levels: Vec<u16>,
    },
    /// Sign of life while no frames flow.
    Heartbeat {
        /// Sequence number.
        seq: u32,
    },
    /// Every channel to 0.
    Off {
        /// Sequence number.
        seq: u32,
    },
}

impl HostLine {
    /// The line's sequence number.
    pub(crate) fn seq(&self) -> u32 {
        match self {
            HostLine::Hello { seq, .. }
            | HostLine::Frame { seq, .. }
            | HostLine::Heartbeat { seq }
            | HostLine::Off { seq } => *seq,
        }
    }
}

/// A reply from the microcontroller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The line with this sequence number was applied; `info` is the rest of the line
    /// (the protocol version, for `HELLO`).
    Ok {
        /// Sequence number of the acknowledged line.
        seq: u32,
        /// Further fields, space-separated, possibly empty.
        info: String,
    },
    /// The line was refused (`seq` is `None` when the line was too damaged to read it).
    Err {
        /// Sequence number of the refused line, if readable.
        seq: Option<u32>,
        /// Why, as sent by the microcontroller.
        reason: String,
    },
}

/// Why a received line is not a valid protocol line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// No `*XX` checksum suffix.
    #[error("no '*' checksum suffix")]
    NoChecksum,
    /// The checksum does not match the body.
    #[error("checksum {got:02X} does not match {expected:02X}")]
    BadChecksum {
        /// The checksum on the line.
        got: u8,
        /// The checksum of the body.
        expected: u8,
    },
    /// The body does not follow the grammar.
    #[error("malformed line: {0}")]
    Malformed(&'static str),
    /// Longer than [`MAX_LINE`].
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
}

fn seal(body: &str) -> String {
    format!("{body}*{:02X}\n", crc8(body.as_bytes()))
}

/// Encodes a host line, with checksum and the terminating newline.
pub(crate) fn encode_host(line: &HostLine) -> String {
    let body = match line {
        HostLine::Hello {
            seq,
            channels,
            timeout_ms,
        } => format!("HELLO {seq} {PROTOCOL_VERSION} {channels} {timeout_ms}"),
        HostLine::Frame { seq, levels } => {
            let mut body = format!("F {seq} ");
            for (i, level) in levels.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                // Writing to a String cannot fail.
                let _ = write!(body, "{level}");
            }
            body
        }
        HostLine::Heartbeat { seq } => format!("H {seq}"),
        HostLine::Off { seq } => format!("OFF {seq}"),
    };
    seal(&body)
}

#[cfg(test)]
/// Encodes a reply, with checksum and the terminating newline (for microcontroller emulators).
pub(crate) fn encode_reply(reply: &Reply) -> String {
    let body = match reply {
        Reply::Ok { seq, info } if info.is_empty() => format!("OK {seq}"),
        Reply::Ok { seq, info } => format!("OK {seq} {info}"),
        Reply::Err {
            seq: Some(seq),
            reason,
        } => format!("ERR {seq} {reason}"),
        Reply::Err { seq: None, reason } => format!("ERR - {reason}"),
    };
    seal(&body)
}

/// Checks the length and checksum of a line (without its terminator) and returns the body.
fn unseal(line: &str) -> Result<&str, DecodeError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(DecodeError::TooLong);
    }
    let (body, sum) = line.rsplit_once('*').ok_or(DecodeError::NoChecksum)?;
    let got = (sum.len() == 2)
        .then(|| u8::from_str_radix(sum, 16).ok())
        .flatten()
        .ok_or(DecodeError::Malformed("checksum is not two hex digits"))?;
    let expected = crc8(body.as_bytes());
    if got != expected {
        return Err(DecodeError::BadChecksum { got, expected });
    }
    Ok(body)
}

fn parse_seq(word: Option<&str>) -> Result<u32, DecodeError> {
    word.and_then(|w| w.parse().ok())
        .ok_or(DecodeError::Malformed("missing or bad sequence number"))
}

/// Decodes a reply line (terminator removed).
pub(crate) fn decode_reply(line: &str) -> Result<Reply, DecodeError> {
    let body = unseal(line)?;
    let (word, rest) = body.split_once(' ').unwrap_or((body, ""));
    let (seq_word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    match word {
        "OK" => Ok(Reply::Ok {
            seq: parse_seq(Some(seq_word))?,
            info: tail.to_owned(),
        }),
        "ERR" => Ok(Reply::Err {
            seq: if seq_word == "-" {
                None
            } else {
                Some(parse_seq(Some(seq_word))?)
            },
            reason: tail.to_owned(),
        }),
        _ => Err(DecodeError::Malformed("reply is neither OK nor ERR")),
    }
}

#[cfg(test)]
/// Decodes a host line (terminator removed), as a microcontroller would.
pub(crate) fn decode_host(line: &str) -> Result<HostLine, DecodeError> {
    let body = unseal(line)?;
    let mut words = body.split(' ');
    let kind = words.next().unwrap_or("");
    let seq = parse_seq(words.next())?;
    let decoded = match kind {
        "HELLO" => {
            let version = parse_seq(words.next())?;
            if version != PROTOCOL_VERSION {
                return Err(DecodeError::Malformed("unsupported protocol version"));
            }
            let channels = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or(DecodeError::Malformed("bad channel count"))?;
            let timeout_ms = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or(DecodeError::Malformed("bad timeout"))?;
            HostLine::Hello {
                seq,
                channels,
                timeout_ms,
            }
        }
        "F" => {
            let list = words
                .next()
                .ok_or(DecodeError::Malformed("frame without levels"))?;
            let levels = list
                .split(',')
                .map(|l| l.parse::<u16>().ok().filter(|&l| l <= 1000))
                .collect::<Option<Vec<u16>>>()
                .ok_or(DecodeError::Malformed("level not in 0..=1000"))?;
            HostLine::Frame { seq, levels }
        }
        "H" => HostLine::Heartbeat { seq },
        "OFF" => HostLine::Off { seq },
        _ => return Err(DecodeError::Malformed("unknown line kind")),
    };
    if words.next().is_some() {
        return Err(DecodeError::Malformed("trailing fields"));
    }
    Ok(decoded)
}

/// True when `seq` comes after `last` in serial-number arithmetic (so the counter may wrap).
pub(crate) fn seq_after(seq: u32, last: u32) -> bool {
    let diff = seq.wrapping_sub(last);
    diff != 0 && diff < 0x8000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc8_matches_the_smbus_check_value() {
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc8(b""), 0);
    }

    #[test]
    fn frame_line_has_the_documented_form() {
        let line = encode_host(&HostLine::Frame {
            seq: 7,
            levels: vec![0, 500, 1000],
        });
        let body = "F 7 0,500,1000";
        assert_eq!(line, format!("{body}*{:02X}\n", crc8(body.as_bytes())));
    }

    #[test]
    fn the_documented_examples_are_what_the_encoder_writes() {
        let hello = HostLine::Hello {
            seq: 1,
            channels: 11,
            timeout_ms: 1000,
        };
        assert_eq!(encode_host(&hello), "HELLO 1 1 11 1000*2A\n");
        let mut levels = vec![0; 11];
        levels[2] = 500;
        levels[3] = 500;
        levels[10] = 1000;
        let frame = HostLine::Frame { seq: 2, levels };
        assert_eq!(encode_host(&frame), "F 2 0,0,500,500,0,0,0,0,0,0,1000*73\n");
        assert_eq!(encode_host(&HostLine::Heartbeat { seq: 3 }), "H 3*E0\n");
        assert_eq!(encode_host(&HostLine::Off { seq: 4 }), "OFF 4*CE\n");
        let err = Reply::Err {
            seq: Some(4),
            reason: "range".into(),
        };
        assert_eq!(decode_reply("ERR 4 range*DF"), Ok(err));
    }

    #[test]
    fn host_lines_round_trip() {
        let lines = [
            HostLine::Hello {
                seq: 1,
                channels: 11,
                timeout_ms: 1000,
            },
            HostLine::Frame {
                seq: 2,
                levels: vec![1000; 11],
            },
            HostLine::Heartbeat { seq: u32::MAX },
            HostLine::Off { seq: 0 },
        ];
        for line in lines {
            let text = encode_host(&line);
            let text = text.strip_suffix('\n').unwrap();
            assert_eq!(decode_host(text), Ok(line));
        }
    }

    #[test]
    fn replies_round_trip() {
        let replies = [
            Reply::Ok {
                seq: 3,
                info: String::new(),
            },
            Reply::Ok {
                seq: 1,
                info: "1".into(),
            },
            Reply::Err {
                seq: Some(9),
                reason: "range".into(),
            },
            Reply::Err {
                seq: None,
                reason: "checksum".into(),
            },
        ];
        for reply in replies {
            let text = encode_reply(&reply);
            assert_eq!(decode_reply(text.trim_end()), Ok(reply));
        }
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_checksum() {
        let text = encode_host(&HostLine::Frame {
            seq: 5,
            levels: vec![100, 200],
        });
        let damaged = text.trim_end().replacen("100", "900", 1);
        assert!(matches!(
            decode_host(&damaged),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn malformed_lines_are_rejected() {
        assert_eq!(decode_reply("OK 1"), Err(DecodeError::NoChecksum));
        assert!(matches!(
            decode_reply("OK 1*ZZ"),
            Err(DecodeError::Malformed(_))
        ));
        let bad_kind = encode_reply(&Reply::Ok {
            seq: 1,
            info: String::new(),
        })
        .replace("OK", "NO");
        assert!(decode_reply(bad_kind.trim_end()).is_err());
        let over = seal("F 1 1001");
        assert!(matches!(
            decode_host(over.trim_end()),
            Err(DecodeError::Malformed(_))
        ));
        let long = format!("H 1 {}", "x".repeat(MAX_LINE));
        assert_eq!(
            decode_host(seal(&long).trim_end()),
            Err(DecodeError::TooLong)
        );
    }

    #[test]
    fn crlf_terminated_lines_decode() {
        let text = encode_reply(&Reply::Ok {
            seq: 4,
            info: String::new(),
        });
        let crlf = text.replace('\n', "\r");
        assert!(decode_reply(&crlf).is_ok());
    }

    #[test]
    fn sequence_comparison_survives_wrap_around() {
        assert!(seq_after(2, 1));
        assert!(!seq_after(1, 1));
        assert!(!seq_after(1, 2));
        assert!(seq_after(0, u32::MAX));
        assert!(seq_after(5, u32::MAX - 3));
    }
}
