// A file sent through the Uploads API by the official openai-go SDK (v3): Uploads.New,
// every part at once through Uploads.Parts.New (started last part first), then
// Uploads.Complete with the parts in order and the md5; the File is read back. Run by
// test/clients/go-sdk-uploads.test.ts; reads its inputs from the environment and prints
// one JSON document.
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func env(name string) string {
	value := os.Getenv(name)
	if value == "" {
		fmt.Fprintf(os.Stderr, "%s is not set\n", name)
		os.Exit(2)
	}
	return value
}

func sdkVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/openai/openai-go/v3" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	ctx := context.Background()
	client := openai.NewClient(option.WithAPIKey(env("FILES_API_KEY")), option.WithBaseURL(env("FILES_API_BASE_URL")), option.WithMaxRetries(0))
	source := env("FILES_API_SOURCE")
	partSize, err := strconv.Atoi(env("FILES_API_PART_SIZE"))
	if err != nil {
		fail(err)
	}
	data, err := os.ReadFile(source)
	if err != nil {
		fail(err)
	}
	upload, err := client.Uploads.New(ctx, openai.UploadNewParams{
		Bytes: int64(len(data)), Filename: filepath.Base(source), MimeType: "application/octet-stream", Purpose: openai.FilePurposeAssistants,
	})
	if err != nil {
		fail(err)
	}
	count := (len(data) + partSize - 1) / partSize
	ids := make([]string, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := count - 1; i >= 0; i-- {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			end := min((i+1)*partSize, len(data))
			part, err := client.Uploads.Parts.New(ctx, upload.ID, openai.UploadPartNewParams{
				Data: openai.File(bytes.NewReader(data[i*partSize:end]), fmt.Sprintf("part-%d", i), "application/octet-stream"),
			})
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = part.ID
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fail(err)
		}
	}
	sum := md5.Sum(data)
	done, err := client.Uploads.Complete(ctx, upload.ID, openai.UploadCompleteParams{PartIDs: ids, Md5: openai.String(hex.EncodeToString(sum[:]))})
	if err != nil {
		fail(err)
	}
	res, err := client.Files.Content(ctx, done.File.ID)
	if err != nil {
		fail(err)
	}
	defer res.Body.Close()
	hash := sha256.New()
	n, err := io.Copy(hash, res.Body)
	if err != nil {
		fail(err)
	}
	out, err := json.Marshal(map[string]any{
		"sdk":    "openai-go " + sdkVersion(),
		"upload": json.RawMessage(done.RawJSON()),
		"parts":  count,
		"bytes":  n,
		"sha256": hex.EncodeToString(hash.Sum(nil)),
	})
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}
