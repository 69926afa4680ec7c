/* Passkeys (WebAuthn) for the login pages and the dashboard; progressive: every form
   marked data-passkey stays hidden unless the browser supports WebAuthn. The server
   sends the options as JSON (base64url for binary fields) and receives the
   credential as JSON in the form field "credential"; the form is then submitted
   normally (303 like every other form). */
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
    return;
  }

  function toBuffer(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return { type: d.type, id: toBuffer(d.id), transports: d.transports };
    });
  }

  function requestOptions(o) {
    o.challenge = toBuffer(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  function creationOptions(o) {
    o.challenge = toBuffer(o.challenge);
    o.user.id = toBuffer(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function credentialJson(c) {
    var r = c.response;
    var out = {
      id: c.id, rawId: toText(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(r.clientDataJSON) }
    };
    if (c.authenticatorAttachment) { out.authenticatorAttachment = c.authenticatorAttachment; }
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      if (r.userHandle) { out.response.userHandle = toText(r.userHandle); }
    }
    return JSON.stringify(out);
  }

  function setUp(form) {
    var kind = form.getAttribute("data-passkey");
    var field = form.querySelector("input[name=credential]");
    var token = form.querySelector("input[name=csrf_token]").value;
    var status = form.querySelector("[data-passkey-status]");
    var pending = null;

    function options() {
      return fetch(form.getAttribute("data-passkey-options"), {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": token, "Accept": "application/json" }
      }).then(function (resp) {
        if (!resp.ok) { throw new Error("options " + resp.status); }
        return resp.json();
      });
    }

    function send(credential) {
      if (!credential) { return; }
      field.value = credentialJson(credential);
      form.submit();
    }

    function failed(err) {
      if (err && err.name === "AbortError") { return; }
      if (status) { status.hidden = false; }
    }

    function get(mediation) {
      if (pending) { pending.abort(); }
      var controller = new AbortController();
      pending = controller;
      return options().then(function (o) {
        var request = { publicKey: requestOptions(o), signal: controller.signal };
        if (mediation) { request.mediation = mediation; }
        return navigator.credentials.get(request);
      }).then(send);
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (status) { status.hidden = true; }
      if (kind === "create") {
        options().then(function (o) {
          return navigator.credentials.create({ publicKey: creationOptions(o) });
        }).then(send).catch(failed);
      } else {
        get(null).catch(failed);
      }
    });
    form.hidden = false;

    if (kind === "get" && form.hasAttribute("data-passkey-conditional") &&
        PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) { get("conditional").catch(function () { /* the button remains */ }); }
      });
    }
  }

  function start() {
    var forms = document.querySelectorAll("form[data-passkey]");
    for (var i = 0; i < forms.length; i++) { setUp(forms[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
