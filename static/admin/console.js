// idgraph's admin console: the two things its pages do in the browser, by event delegation
// so that they also work on content htmx swaps in. Served from the binary; the pages' policy
// allows no inline script.
(function () {
  'use strict';

  // <button data-copy="ID">: copies the value of the input ID and says so on the button.
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button[data-copy]');
    if (!button) {
      return;
    }
    var input = document.getElementById(button.getAttribute('data-copy'));
    if (!input) {
      return;
    }
    input.select();
    var done = function () {
      button.textContent = 'Copied';
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        button.textContent = 'Press Ctrl+C';
      });
    } else {
      button.textContent = 'Press Ctrl+C';
    }
  });

  // <input type=file data-preview="ID">: shows the chosen image in the <img> ID before upload.
  document.addEventListener('change', function (event) {
    var input = event.target;
    if (!input.matches || !input.matches('input[type=file][data-preview]')) {
      return;
    }
    var preview = document.getElementById(input.getAttribute('data-preview'));
    var file = input.files && input.files[0];
    if (!preview || !file) {
      return;
    }
    var reader = new FileReader();
    reader.onload = function () {
      preview.src = reader.result;
      preview.hidden = false;
    };
    reader.readAsDataURL(file);
  });
})();
