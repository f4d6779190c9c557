// Portico portal: small enhancements only; every flow works without this file.
(function () {
  "use strict";
  // Dates are rendered on the server in the customer's time zone, once it knows it.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("portico_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "portico_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* no Intl: dates stay in UTC */ }
})();
