/// Follows the representations of an HPACK header block (RFC 7541 §6) far enough to tell
/// whether the bytes so far end between two of them: lengths and prefixes only, no decoding.
///
/// `ConnectionTagger` appends a header field to each client header block only when the client's
/// part ends on such a boundary. Otherwise an unfinished string of the client's (a name with
/// its value's length still to come, say) would swallow the appended field as its own bytes.
struct HeaderBlockBoundary {
    /// Strings still to come in the current representation (its name and/or value).
    private var stringsPending = 0
    /// Inside a multi-byte integer, and whether it is a string's length.
    private var integer: (value: Int, shift: Int, isStringLength: Bool)?
    /// Bytes of the current string still to come.
    private var stringBytesRemaining = 0

    /// Whether the bytes consumed end between two representations.
    var isAtBoundary: Bool { stringsPending == 0 && integer == nil && stringBytesRemaining == 0 }

    mutating func consume(_ byte: UInt8) {
        if stringBytesRemaining > 0 {
            stringBytesRemaining -= 1
        } else if var partial = integer {
            if partial.shift < 28 { partial.value += Int(byte & 0x7f) << partial.shift }
            partial.shift += 7
            if byte & 0x80 != 0 {
                integer = partial
            } else {
                integer = nil
                if partial.isStringLength { stringBytesRemaining = partial.value }
            }
        } else if stringsPending > 0 {
            // A string: the Huffman bit, then its length with a 7-bit prefix.
            stringsPending -= 1
            startInteger(prefix: byte & 0x7f, maximum: 0x7f, isStringLength: true)
        } else if byte & 0x80 != 0 {
            startInteger(prefix: byte & 0x7f, maximum: 0x7f, isStringLength: false)  // indexed field
        } else if byte & 0x40 != 0 {
            // Literal with incremental indexing: an index (6-bit prefix), or 0 and a name.
            stringsPending = byte & 0x3f == 0 ? 2 : 1
            startInteger(prefix: byte & 0x3f, maximum: 0x3f, isStringLength: false)
        } else if byte & 0x20 != 0 {
            startInteger(prefix: byte & 0x1f, maximum: 0x1f, isStringLength: false)  // table size update
        } else {
            // Literal without indexing or never indexed: an index (4-bit prefix), or 0 and a name.
            stringsPending = byte & 0x0f == 0 ? 2 : 1
            startInteger(prefix: byte & 0x0f, maximum: 0x0f, isStringLength: false)
        }
    }

    /// An integer whose first byte's prefix is `prefix`; all ones means more bytes follow.
    private mutating func startInteger(prefix: UInt8, maximum: UInt8, isStringLength: Bool) {
        if prefix == maximum {
            integer = (Int(maximum), 0, isStringLength)
        } else if isStringLength {
            stringBytesRemaining = Int(prefix)
        }
    }
}
