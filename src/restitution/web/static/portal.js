// Progressive enhancement only: every form works without this file.
// Shows a preview of the photos and videos chosen in a file input with data-preview.
(function () {
  "use strict";
  function preview(input) {
    var target = document.getElementById(input.getAttribute("data-preview"));
    if (!target) { return; }
    target.textContent = "";
    Array.prototype.forEach.call(input.files || [], function (file) {
      var url = URL.createObjectURL(file);
      var figure = document.createElement("figure");
      var media;
      if (file.type.indexOf("video/") === 0) {
        media = document.createElement("video");
        media.controls = true;
      } else if (file.type.indexOf("image/") === 0) {
        media = document.createElement("img");
        media.alt = "Preview of " + file.name;
      } else {
        return;
      }
      media.className = "thumb";
      media.src = url;
      var caption = document.createElement("figcaption");
      caption.className = "small";
      caption.textContent = file.name;
      figure.appendChild(media);
      figure.appendChild(caption);
      target.appendChild(figure);
    });
  }
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input && input.matches && input.matches("input[type=file][data-preview]")) {
      preview(input);
    }
  });
})();
