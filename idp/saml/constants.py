"""Names from the SAML 2.0 specifications (OASIS saml-core, saml-bindings,
saml-metadata) and XML Signature / Encryption that the IdP uses."""

from __future__ import annotations

NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS_XENC11 = "http://www.w3.org/2009/xmlenc11#"
NS_XS = "http://www.w3.org/2001/XMLSchema"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"

NSMAP = {
    "saml": NS_SAML,
    "samlp": NS_SAMLP,
    "md": NS_MD,
    "ds": NS_DS,
    "xenc": NS_XENC,
    "xs": NS_XS,
    "xsi": NS_XSI,
}

# saml-bindings 3.4 and 3.5
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
# saml-bindings 3.2: back-channel Single Logout (idp.saml.soap_logout)
BINDING_SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"

# saml-core 8.3
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_FORMATS = {
    "persistent": NAMEID_PERSISTENT,
    "email": NAMEID_EMAIL,
    "transient": NAMEID_TRANSIENT,
}

# saml-core 8.2.3
ATTRNAME_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"

# saml-core 3.2.2.2
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
STATUS_REQUEST_DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
STATUS_NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
STATUS_INVALID_NAMEID_POLICY = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
STATUS_PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
STATUS_NO_AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"

# saml-core 2.4.1.1
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

# saml-authn-context 3.4
AC_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
AC_PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
AC_REFEDS_MFA = "https://refeds.org/profile/mfa"
AC_TIME_SYNC_TOKEN = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken"

# XML Signature algorithms (RFC 6931). SHA-1 is refused everywhere.
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
SIGNATURE_ALGORITHMS = {RSA_SHA256: "sha256", RSA_SHA384: "sha384", RSA_SHA512: "sha512"}
DIGEST_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
}
TRANSFORM_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
C14N_ALGORITHMS = {
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
}

# XML Encryption block ciphers, most preferred first (xmlenc-core1 5.2).
ENC_AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
ENC_AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
ENC_AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
ENC_AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
ENCRYPTION_PREFERENCE = (ENC_AES256_GCM, ENC_AES128_GCM, ENC_AES256_CBC, ENC_AES128_CBC)
KEY_TRANSPORT_RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
