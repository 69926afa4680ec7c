// Tells the server the reader's time zone (IANA name) for dates and times on the
// pages (idp/i18n.py, format_when). A cookie readable by scripts on purpose: it
// holds nothing but the zone's name.
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone || !/^[A-Za-z0-9_+\/-]{1,64}$/.test(zone)) { return; }
    var current = document.cookie.split("; ").filter(function (c) { return c.indexOf("ug_tz=") === 0; })[0];
    if (current === "ug_tz=" + zone) { return; }
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = "ug_tz=" + zone + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
  } catch (e) { /* no zone: the language's default applies */ }
})();
