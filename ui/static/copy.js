// Copy buttons: progressive enhancement. Without JavaScript the buttons
// stay hidden and the secret stays selectable text.
document.querySelectorAll('[data-copy]').forEach(function (b) {
  var target = document.getElementById(b.getAttribute('data-copy'));
  var status = document.getElementById(b.getAttribute('data-copy') + '-copied');
  if (!target || !navigator.clipboard) { return; }
  b.hidden = false;
  b.addEventListener('click', function () {
    navigator.clipboard.writeText((target.value || target.textContent).trim()).then(function () {
      if (status) { status.textContent = 'Copied to the clipboard.'; }
    }, function () {
      if (status) { status.textContent = 'Could not copy; select the text and copy it.'; }
    });
  });
});
