// The Example Shop's page script: Portico's chat, signed in as whoever is logged in to the shop.
PorticoChat.init({
  portal: document.body.dataset.portal,
  onReady: function () {
    if (document.body.dataset.signedIn && !PorticoChat.isLoggedIn()) {
      // The shop's backend signs a fresh token (five minutes, single use) for its logged-in user.
      fetch("/portico-token", { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (answer) { return PorticoChat.sso.login(answer.token); })
        .catch(function (error) { console.warn("chat sign-in failed:", error.code, error.message); });
    }
  }
});

// Logging out of the shop logs out of the chat too.
var logout = document.getElementById("logout");
if (logout) {
  logout.addEventListener("submit", function (event) {
    event.preventDefault();
    PorticoChat.sso.logout().catch(function () {}).then(function () { logout.submit(); });
  });
}
