import Foundation
import JobWorker
import X509

/// Why a verified client certificate carries no usable identity: the call is UNAUTHENTICATED
/// with this reason.
public struct IdentityRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

extension Identity {
    /// The longest CN or OU accepted, in bytes of UTF-8.
    public static let maximumNameBytes = 256

    /// The identity a verified client certificate carries: its Subject's one CN, and the role
    /// its one OU names (nil for anything but admin, user or viewer: such a caller may do
    /// nothing).
    ///
    /// Checked at the boundary, once per connection: a subject with no CN or OU or with several
    /// of either is refused (`OU=user, CN=mallory, OU=admin, CN=bob` must not act as anybody),
    /// and so is a name with control or formatting characters (which would forge lines in a log
    /// or a terminal), over 256 bytes, or not in Unicode NFC (names are compared as strings).
    public static func validated(from certificate: Certificate) -> Result<Identity, IdentityRefusal> {
        var commonNames: [String] = []
        var units: [String] = []
        for relativeName in certificate.subject {
            for attribute in relativeName {
                switch attribute.type {
                // The string itself: `description` is the RFC 4514 form (`a\,b`), and a
                // value of another ASN.1 type has no string (nil: refused below).
                case .RDNAttributeType.commonName: commonNames.append(String(attribute.value) ?? "")
                case .RDNAttributeType.organizationalUnitName: units.append(String(attribute.value) ?? "")
                default: break
                }
            }
        }
        guard commonNames.count == 1, units.count == 1 else {
            return .failure(
                IdentityRefusal(
                    "the client certificate's subject must hold exactly one CN and one OU "
                        + "(it holds \(commonNames.count) CN and \(units.count) OU)"))
        }
        for (label, value) in [("CN", commonNames[0]), ("OU", units[0])] {
            if let problem = problem(with: value) {
                return .failure(IdentityRefusal("the client certificate's \(label) \(problem)"))
            }
        }
        return .success(Identity(name: commonNames[0], role: Role(rawValue: units[0])))
    }

    /// What makes `value` unusable as a name, or nil.
    static func problem(with value: String) -> String? {
        if value.isEmpty { return "is empty" }
        if value.utf8.count > maximumNameBytes {
            return "is \(value.utf8.count) bytes long (at most \(maximumNameBytes))"
        }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory.isControlOrFormat }) {
            return "holds control characters: \(EscapedText.quoted(value))"
        }
        // Swift compares strings by canonical equivalence: two encodings of one name would be
        // one owner. In NFC only, a name has one encoding.
        if value.precomposedStringWithCanonicalMapping.utf8.elementsEqual(value.utf8) == false {
            return "is not in Unicode normalization form C: \(EscapedText.quoted(value))"
        }
        return nil
    }
}
